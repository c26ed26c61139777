package mysqlbinlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
)

// randomLiteral returns a random SQL literal for a column of the
// differential table (NULL one time in ten).
func randomLiteral(r *rand.Rand, col string) string {
	if r.IntN(10) == 0 {
		return "NULL"
	}
	pick := func(vs ...string) string { return vs[r.IntN(len(vs))] }
	digits := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(byte('0' + r.IntN(10)))
		}
		return b.String()
	}
	sign := func() string { return pick("", "-") }
	text := func(n int) string {
		parts := []string{"a", "Z", "é", "日本", "😀", `\"`, `\\`, `\n`, `\t`, " ", "'", "\x01", "ü", "\u2028"}
		var b strings.Builder
		for range r.IntN(n + 1) {
			p := parts[r.IntN(len(parts))]
			if p == "'" {
				p = "''"
			}
			b.WriteString(p)
		}
		return "'" + b.String() + "'"
	}
	hexBytes := func(n int) string {
		if n == 0 {
			return "''"
		}
		var b strings.Builder
		b.WriteString("0x")
		for range n {
			fmt.Fprintf(&b, "%02X", r.IntN(256))
		}
		return b.String()
	}
	frac := func(n int) string {
		if n == 0 {
			return ""
		}
		return "." + digits(n)
	}
	switch col {
	case "ti":
		return fmt.Sprint(r.IntN(256) - 128)
	case "tiu":
		return fmt.Sprint(r.IntN(256))
	case "si":
		return fmt.Sprint(r.IntN(65536) - 32768)
	case "siu":
		return fmt.Sprint(r.IntN(65536))
	case "mi":
		return fmt.Sprint(r.IntN(1<<24) - 1<<23)
	case "miu":
		return fmt.Sprint(r.IntN(1 << 24))
	case "i":
		return fmt.Sprint(int32(r.Uint32()))
	case "iu":
		return fmt.Sprint(r.Uint32())
	case "bi":
		return fmt.Sprint(int64(r.Uint64()))
	case "biu":
		return fmt.Sprint(r.Uint64())
	case "d0":
		return sign() + digits(1+r.IntN(18))
	case "d1":
		return sign() + digits(1+r.IntN(8)) + "." + digits(2)
	case "d2":
		return "'" + sign() + digits(1+r.IntN(35)) + "." + digits(1+r.IntN(30)) + "'"
	case "d3":
		return sign() + "0." + digits(1+r.IntN(5))
	case "f":
		return fmt.Sprintf("%g", (r.Float64()-0.5)*pick1(r, 1e-30, 1, 1e6, 1e30))
	case "dbl":
		return fmt.Sprintf("%g", (r.Float64()-0.5)*pick1(r, 1e-300, 1, 1e15, 1e300))
	case "dt":
		return fmt.Sprintf("'%04d-%02d-%02d'", 1000+r.IntN(9000), 1+r.IntN(12), 1+r.IntN(28))
	case "tm0", "tm1", "tm3", "tm6":
		p := int(col[2] - '0')
		return fmt.Sprintf("'%s%d:%02d:%02d%s'", sign(), r.IntN(839), r.IntN(60), r.IntN(60), frac(r.IntN(p+1)))
	case "dtm0", "dtm2", "dtm6":
		p := int(col[3] - '0')
		return fmt.Sprintf("'%04d-%02d-%02d %02d:%02d:%02d%s'", 1000+r.IntN(9000), 1+r.IntN(12), 1+r.IntN(28),
			r.IntN(24), r.IntN(60), r.IntN(60), frac(r.IntN(p+1)))
	case "ts0", "ts4":
		p := int(col[2] - '0')
		return fmt.Sprintf("'%04d-%02d-%02d %02d:%02d:%02d%s'", 1971+r.IntN(66), 1+r.IntN(12), 1+r.IntN(28),
			r.IntN(24), r.IntN(60), r.IntN(60), frac(r.IntN(p+1)))
	case "yr":
		return pick("0", fmt.Sprint(1901+r.IntN(255)))
	case "c", "vc", "tx", "vcl":
		return text(12)
	case "lc":
		return text(6)
	case "bn":
		return hexBytes(r.IntN(5))
	case "vb", "bl":
		return hexBytes(r.IntN(12))
	case "e":
		return pick("'a'", "'b'", "'c'", "''")
	case "s":
		return pick("''", "'x'", "'y,z'", "'x,y,z'")
	case "b1":
		return pick("b'0'", "b'1'")
	case "b13":
		return fmt.Sprint(r.IntN(1 << 13))
	case "b64":
		return fmt.Sprint(r.Uint64())
	}
	panic("no literal for " + col)
}

func pick1(r *rand.Rand, vs ...float64) float64 { return vs[r.IntN(len(vs))] }

// TestBinlogNativeMatchesGoMySQL: over random rows of every type the
// native decoder handles (inserts, updates, deletes, NULLs), its payloads
// and keys are byte for byte those of go-mysql's decoding.
func TestBinlogNativeMatchesGoMySQL(t *testing.T) {
	d := testDB(t)
	cols := []string{"ti TINYINT", "tiu TINYINT UNSIGNED", "si SMALLINT", "siu SMALLINT UNSIGNED", "mi MEDIUMINT",
		"miu MEDIUMINT UNSIGNED", "i INT", "iu INT UNSIGNED", "bi BIGINT", "biu BIGINT UNSIGNED",
		"d0 DECIMAL(18,0)", "d1 DECIMAL(10,2)", "d2 DECIMAL(65,30)", "d3 DECIMAL(5,5)", "f FLOAT", "dbl DOUBLE",
		"dt DATE", "tm0 TIME", "tm1 TIME(1)", "tm3 TIME(3)", "tm6 TIME(6)", "dtm0 DATETIME", "dtm2 DATETIME(2)", "dtm6 DATETIME(6)",
		"ts0 TIMESTAMP NULL", "ts4 TIMESTAMP(4) NULL", "yr YEAR",
		"c CHAR(10)", "vc VARCHAR(300)", "tx TEXT", "lc CHAR(8) CHARACTER SET latin1", "vcl VARCHAR(20) CHARACTER SET latin1",
		"bn BINARY(4)", "vb VARBINARY(12)", "bl BLOB",
		"e ENUM('a','b','c')", "s SET('x','y','z')", "b1 BIT(1)", "b13 BIT(13)", "b64 BIT(64)"}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c[:strings.IndexByte(c, ' ')]
	}
	start := d.pos()
	d.exec("SET SESSION sql_mode = ''") // '' into ENUM, out-of-range YEAR 0
	d.exec(`CREATE TABLE diff (id INT PRIMARY KEY, u INT NOT NULL DEFAULT 0, ` + strings.Join(cols, ", ") + `) DEFAULT CHARSET=utf8mb4`)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	seed := r.Uint64()
	t.Logf("seed %d", seed)
	r = rand.New(rand.NewPCG(seed, 7))
	const n = 600
	for lo := 0; lo < n; lo += 100 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO diff (id, " + strings.Join(names, ", ") + ") VALUES ")
		for id := lo; id < lo+100; id++ {
			if id > lo {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d", id)
			for _, c := range names {
				sb.WriteString(", " + randomLiteral(r, c))
			}
			sb.WriteByte(')')
		}
		d.exec(sb.String())
	}
	for id := 0; id < n; id += 3 {
		c := names[r.IntN(len(names))]
		d.exec(fmt.Sprintf("UPDATE diff SET u = u + 1, %s = %s WHERE id = %d", c, randomLiteral(r, c), id))
	}
	d.exec("DELETE FROM diff WHERE id % 7 = 0")
	want := n + (n+2)/3 + (n+6)/7
	var got [2][][]byte
	var keys [2][][]byte
	for k, dec := range []string{"native", "go-mysql"} {
		p := startPipeline(t, d, fileStart(start)+"\ndecoder: "+dec, engine.NewMemoryStore())
		got[k] = p.wait(want, 30*time.Second)
		keys[k] = p.rec.Keys()
		if dec == "native" && p.input.NativeRows() != uint64(want) {
			t.Errorf("native decoder read %d of %d rows", p.input.NativeRows(), want)
		}
		p.stop()
	}
	if len(got[0]) != len(got[1]) {
		t.Fatalf("native %d rows, go-mysql %d", len(got[0]), len(got[1]))
	}
	bad := 0
	for i := range got[0] {
		if !bytes.Equal(got[0][i], got[1][i]) || !bytes.Equal(keys[0][i], keys[1][i]) {
			bad++
			if bad <= 3 {
				t.Errorf("row %d differs (seed %d):\nnative   %s %s\ngo-mysql %s %s", i, seed, keys[0][i], got[0][i], keys[1][i], got[1][i])
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d rows differ", bad, len(got[0]))
	}
}

// benchImage is the bench table's row (benchTable) as a binlog row image.
func benchImage(t testing.TB) []byte {
	t.Helper()
	le := func(v uint64, n int) []byte {
		b := make([]byte, n)
		for i := range n {
			b[i] = byte(v >> (8 * i))
		}
		return b
	}
	be := func(v uint64, n int) []byte {
		b := make([]byte, n)
		for i := range n {
			b[n-1-i] = byte(v >> (8 * i))
		}
		return b
	}
	var img []byte
	img = append(img, 0, 0) // null bitmap, 10 columns
	img = append(img, le(4711, 8)...)
	img = append(img, le(4711, 4)...)
	img = append(img, le(14133, 4)...)
	img = append(img, 9)
	img = append(img, "name-4711"...)
	// DECIMAL(12,2) 4711.25: 1 byte of the 10 integer digits' tail, 4 bytes
	// of 9 digits, 1 byte of 2 fraction digits; sign bit set.
	img = append(img, 0x80, 0, 0, 0x12, 0x67, 25)
	// DATETIME(3) 2024-01-02 03:04:05.678
	ymd := uint64(2024*13+1)<<5 | 2
	hms := uint64(3)<<12 | 4<<6 | 5
	img = append(img, be(ymd<<17|hms+0x8000000000, 5)...)
	img = append(img, be(6780, 2)...)
	img = append(img, le(0x40B2678000000000, 8)...) // 4711.5
	img = append(img, 11)
	img = append(img, le(22, 2)...)
	img = append(img, "some text for row 4711"...)
	img = append(img, 4)
	img = append(img, "c711"...)
	return img
}

// TestBinlogNativeRowNoAllocs: the native decoder writes the bench row as
// go-mysql's decoding does, and parsing plus encoding allocate nothing.
func TestBinlogNativeRowNoAllocs(t *testing.T) {
	tb, row := benchTable(t)
	if !tb.native {
		t.Fatal("bench table not decoded natively")
	}
	img := benchImage(t)
	all := []byte{0xff, 0x03}
	var r rawRow
	var key, payload, wantKey, want []byte
	enc := func() {
		end, err := tb.parseImage(&r, img, 0, all, 10)
		if err != nil || end != len(img) {
			t.Fatalf("parse: end %d of %d, %v", end, len(img), err)
		}
		key = key[:0]
		payload, err = appendRowBody(payload[:0], &key, tb, (*rawRow)(nil), &r, "")
		if err != nil {
			t.Fatal(err)
		}
	}
	enc()
	want, err := appendRowBody(want, &wantKey, tb, nil, row, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(payload, want) || !bytes.Equal(key, wantKey) {
		t.Fatalf("native:\n%s %s\ngo-mysql values:\n%s %s", key, payload, wantKey, want)
	}
	if n := testing.AllocsPerRun(1000, enc); n != 0 {
		t.Fatalf("%.1f allocations per row, want 0", n)
	}
	// A truncated image is an error, never a panic.
	for cut := 0; cut < len(img); cut++ {
		if _, err := tb.parseImage(&r, img[:cut], 0, all, 10); err == nil {
			t.Fatalf("image cut at %d of %d parsed", cut, len(img))
		}
	}
}

// BenchmarkBinlogNativeRow: parse and encode one row image of the bench
// table natively (compare BenchmarkBinlogRowPacket, which starts from
// go-mysql's decoded values).
func BenchmarkBinlogNativeRow(b *testing.B) {
	tb, _ := benchTable(b)
	img := benchImage(b)
	all := []byte{0xff, 0x03}
	var r rawRow
	var key, payload []byte
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tb.parseImage(&r, img, 0, all, 10); err != nil {
			b.Fatal(err)
		}
		key = key[:0]
		payload, _ = appendRowBody(payload[:0], &key, tb, (*rawRow)(nil), &r, "")
	}
	b.SetBytes(int64(len(payload)))
}
