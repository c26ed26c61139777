package kafka

import (
	"errors"
	"strings"
	"testing"

	"github.com/dbus-project/dbus/pack"
)

func TestKafkaTopicTemplate(t *testing.T) {
	var p pack.Packet
	p.Attrs.SetString("db", "shop")
	p.Attrs.SetString("table", "orders")
	p.Attrs.SetInt("n", 7)
	p.Attrs.SetString("kafka.topic", "events")
	for tmpl, want := range map[string]string{
		"{db}.{table}":       "shop.orders",
		"cdc-{db}_{table}":   "cdc-shop_orders",
		"fixed":              "fixed",
		"dc2.{kafka.topic}":  "dc2.events",
		"{kafka.topic}-v{n}": "events-v7",
	} {
		tt, err := parseTopicTemplate(tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tmpl, err)
		}
		got, err := tt.render(nil, &p)
		if err != nil || string(got) != want {
			t.Fatalf("%q rendered %q, %v; want %q", tmpl, got, err, want)
		}
	}
	tt, _ := parseTopicTemplate("{db}.{missing}")
	if _, err := tt.render(nil, &p); !errors.Is(err, errMissingAttr) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing attribute: %v", err)
	}
}

func TestKafkaTopicTemplateErrors(t *testing.T) {
	for tmpl, want := range map[string]string{
		"":             "empty",
		"{db":          "not closed",
		"db}":          "no matching",
		"{}":           "empty attribute",
		"a b":          "not allowed",
		"{db}/{table}": "not allowed",
		"..":           "not allowed",
		"{d b}":        "bad attribute",
	} {
		_, err := parseTopicTemplate(tmpl)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("template %q: error %v, want it to mention %q", tmpl, err, want)
		}
	}
	if err := validTopic([]byte(strings.Repeat("a", 250))); err == nil {
		t.Error("250-byte topic accepted")
	}
}

func TestKafkaTopicRenderAllocs(t *testing.T) {
	var p pack.Packet
	p.Attrs.SetString("db", "shop")
	p.Attrs.SetString("table", "orders")
	tt, _ := parseTopicTemplate("{db}.{table}")
	it := newInternTable(16)
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(1000, func() {
		buf, _ = tt.render(buf[:0], &p)
		_ = it.get(buf)
	})
	if allocs != 0 {
		t.Fatalf("render+intern allocates %v per packet", allocs)
	}
}
