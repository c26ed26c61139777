package mysqlbinlog

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/google/uuid"
)

// Position is a point in a server's binlog between two transactions: the
// binlog file and the offset of the next event, and the GTID set executed
// up to there ("" when the server has no GTIDs).
type Position struct {
	File string
	Pos  uint32
	GTID string
}

// tokenVersion prefixes every checkpoint token this package writes.
const tokenVersion = "v1"

// AppendToken appends the checkpoint token of p to dst:
//
//	v1|<file>|<pos>|<gtid set>
//
// The GTID set is last so it may contain any character but '\n'.
func (p *Position) AppendToken(dst []byte) []byte {
	dst = append(dst, tokenVersion...)
	dst = append(dst, '|')
	dst = append(dst, p.File...)
	dst = append(dst, '|')
	dst = strconv.AppendUint(dst, uint64(p.Pos), 10)
	dst = append(dst, '|')
	return append(dst, p.GTID...)
}

// Token returns p's checkpoint token.
func (p *Position) Token() string { return string(p.AppendToken(nil)) }

// Offset returns a number that grows along the binlog: the file's sequence
// number (its numeric extension) in the high 32 bits, the offset in the low.
func (p *Position) Offset() int64 { return fileSeq(p.File)<<32 | int64(p.Pos) }

func (p Position) String() string {
	s := p.File + ":" + strconv.FormatUint(uint64(p.Pos), 10)
	if p.GTID != "" {
		s += " (gtid " + p.GTID + ")"
	}
	return s
}

// ParseToken decodes a token written by AppendToken.
func ParseToken(tok string) (Position, error) {
	parts := strings.SplitN(tok, "|", 4)
	if len(parts) != 4 {
		return Position{}, fmt.Errorf("checkpoint token %q: want v1|file|pos|gtid", tok)
	}
	if parts[0] != tokenVersion {
		return Position{}, fmt.Errorf("checkpoint token %q: unknown version %q (this dbus reads %s)", tok, parts[0], tokenVersion)
	}
	pos, err := strconv.ParseUint(parts[2], 10, 32)
	if err != nil {
		return Position{}, fmt.Errorf("checkpoint token %q: bad position: %v", tok, err)
	}
	if parts[1] == "" && parts[3] == "" {
		return Position{}, fmt.Errorf("checkpoint token %q: neither file nor GTID set", tok)
	}
	return Position{File: parts[1], Pos: uint32(pos), GTID: parts[3]}, nil
}

// fileSeq returns the numeric extension of a binlog file name
// ("mysql-bin.000042" -> 42), 0 if it has none.
func fileSeq(name string) int64 {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 64)
	if err != nil || n < 0 || n > 1<<30 {
		return 0
	}
	return n
}

// comparePos orders two file/pos positions of the same server.
func comparePos(af string, ap uint32, bf string, bp uint32) int {
	as, bs := fileSeq(af), fileSeq(bf)
	switch {
	case as < bs:
		return -1
	case as > bs:
		return 1
	case af != bf:
		return strings.Compare(af, bf)
	case ap < bp:
		return -1
	case ap > bp:
		return 1
	}
	return 0
}

// gtidState tracks the executed GTID set while reading, without allocating
// per transaction for MariaDB (one entry per replication domain). MySQL
// sets use go-mysql's MysqlGTIDSet (its String allocates once per commit).
type gtidState struct {
	mariadb bool
	maria   []mariaGTID // sorted by domain
	my      *mysql.MysqlGTIDSet
	text    []byte // String form, rebuilt on change
	dirty   bool

	// The transaction being read.
	cur     mariaGTID
	curSID  uuid.UUID
	curGNO  int64
	hasCur  bool
	curText []byte // the current transaction's GTID as text
}

type mariaGTID struct {
	domain, server uint32
	seq            uint64
}

func newGTIDState(mariadb bool, set string) (*gtidState, error) {
	g := &gtidState{mariadb: mariadb}
	if mariadb {
		if strings.TrimSpace(set) != "" {
			for _, part := range strings.Split(set, ",") {
				gt, err := mysql.ParseMariadbGTID(strings.TrimSpace(part))
				if err != nil {
					return nil, fmt.Errorf("bad MariaDB GTID set %q: %v", set, err)
				}
				g.setMaria(mariaGTID{gt.DomainID, gt.ServerID, gt.SequenceNumber})
			}
		}
	} else {
		s, err := mysql.ParseMysqlGTIDSet(set)
		if err != nil {
			return nil, fmt.Errorf("bad MySQL GTID set %q: %v", set, err)
		}
		g.my = s.(*mysql.MysqlGTIDSet)
	}
	g.dirty = true
	return g, nil
}

func (g *gtidState) setMaria(m mariaGTID) {
	for i := range g.maria {
		if g.maria[i].domain == m.domain {
			g.maria[i] = m
			return
		}
	}
	g.maria = append(g.maria, m)
	sort.Slice(g.maria, func(i, j int) bool { return g.maria[i].domain < g.maria[j].domain })
}

// beginMaria records the GTID of the MariaDB transaction being read.
func (g *gtidState) beginMaria(domain, server uint32, seq uint64) {
	g.cur = mariaGTID{domain, server, seq}
	g.hasCur = true
	g.curText = appendMaria(g.curText[:0], g.cur)
}

// beginMySQL records the GTID of the MySQL transaction being read.
func (g *gtidState) beginMySQL(sid []byte, gno int64) error {
	u, err := uuid.FromBytes(sid)
	if err != nil {
		return fmt.Errorf("bad GTID source id: %v", err)
	}
	g.curSID, g.curGNO, g.hasCur = u, gno, true
	g.curText = appendUUID(g.curText[:0], u)
	g.curText = append(g.curText, ':')
	g.curText = strconv.AppendInt(g.curText, gno, 10)
	return nil
}

// commit adds the current transaction's GTID to the set.
func (g *gtidState) commit() {
	if !g.hasCur {
		return
	}
	g.hasCur = false
	g.dirty = true
	if g.mariadb {
		g.setMaria(g.cur)
		return
	}
	if g.my == nil {
		s, _ := mysql.ParseMysqlGTIDSet("")
		g.my = s.(*mysql.MysqlGTIDSet)
	}
	g.my.AddGTID(g.curSID, g.curGNO)
}

// current returns the GTID of the transaction being read ("" if none).
func (g *gtidState) current() []byte {
	if !g.hasCur {
		return nil
	}
	return g.curText
}

// set returns the executed set's text (valid until the next commit).
func (g *gtidState) set() []byte {
	if !g.dirty {
		return g.text
	}
	g.dirty = false
	g.text = g.text[:0]
	if g.mariadb {
		for i, m := range g.maria {
			if i > 0 {
				g.text = append(g.text, ',')
			}
			g.text = appendMaria(g.text, m)
		}
		return g.text
	}
	if g.my != nil {
		g.text = append(g.text, g.my.String()...)
	}
	return g.text
}

func appendMaria(dst []byte, m mariaGTID) []byte {
	dst = strconv.AppendUint(dst, uint64(m.domain), 10)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, uint64(m.server), 10)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, m.seq, 10)
}

func appendUUID(dst []byte, u uuid.UUID) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return append(dst, buf[:]...)
}
