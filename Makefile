# dbus Makefile: the targets are a contract (see README).
GO      ?= go
PKGS    ?= ./...
TESTFLAGS ?=
BIN     := bin
# Tests that force ZooKeeper reconnects run without -race: a known data
# race inside github.com/go-zookeeper/zk (see cluster/outage_test.go).
ZK_RECONNECT_TESTS := TestClusterSessionDoubt|TestClusterZooKeeperOutage|TestClusterEnsembleNodeLoss|TestClusterFencingFrozenMember|TestClusterLease

.PHONY: all docs build install test test-short stress bench bench-quick profile lint fuzz soak services-start services-stop clean

all: build

# Regenerate the README's plugin reference from the registered specs.
docs:
	$(GO) run ./cmd/dbusd -plugins > .plugins.md
	awk 'BEGIN{while((getline l < ".plugins.md")>0) ref=ref l "\n"} /<!-- plugins:begin -->/{print; printf "%s", ref; skip=1; next} /<!-- plugins:end -->/{skip=0} !skip{print}' README.md > README.md.new
	mv README.md.new README.md
	rm -f .plugins.md

# VERSION defaults to `git describe`; -buildvcs=true also stamps the
# revision into the binary's build info.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.Version=$(VERSION)
build:
	$(GO) build -buildvcs=true -ldflags '$(LDFLAGS)' -o $(BIN)/dbusd ./cmd/dbusd
	$(GO) build -buildvcs=true -o $(BIN)/dbc ./cmd/dbc

# Install for systemd: binaries, unit, sysusers.d/tmpfiles.d entries, the
# main job's sample as /etc/dbus-pipeline/dbusd.yaml (an existing config is
# kept) and every sample under share/doc. DESTDIR stages into a root
# (packaging, and TestEngineInstallLayout); PREFIX is where the binaries go.
PREFIX  ?= /usr/local
DESTDIR ?=
SYSTEMD_UNIT_DIR ?= /lib/systemd/system
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)/usr/lib/sysusers.d \
		$(DESTDIR)/usr/lib/tmpfiles.d $(DESTDIR)/etc/dbus-pipeline $(DESTDIR)$(PREFIX)/share/doc/dbus-pipeline/examples
	install -m 0755 $(BIN)/dbusd $(BIN)/dbc $(DESTDIR)$(PREFIX)/bin/
	sed 's|/usr/local/|$(PREFIX)/|g' etc/dbusd.service > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/dbusd.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/dbusd.service
	install -m 0644 etc/dbus-pipeline.sysusers $(DESTDIR)/usr/lib/sysusers.d/dbus-pipeline.conf
	install -m 0644 etc/dbus-pipeline.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/dbus-pipeline.conf
	[ -e $(DESTDIR)/etc/dbus-pipeline/dbusd.yaml ] || install -m 0640 etc/binlog-to-kafka.yaml $(DESTDIR)/etc/dbus-pipeline/dbusd.yaml
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/dbus-pipeline/
	install -m 0644 etc/*.yaml etc/*.json $(DESTDIR)$(PREFIX)/share/doc/dbus-pipeline/examples/

# The test command the README and .ci/run use. Integration tests need the
# services (.ci/run starts them; `make services-start` does it locally).
test:
	$(GO) test -race -shuffle=on -timeout 25m $(TESTFLAGS) $(PKGS)
	@# ZooKeeper reconnect tests: without -race, because of a known data race
	@# inside github.com/go-zookeeper/zk (see cluster/outage_test.go).
	$(GO) test -shuffle=on -count=1 -timeout 10m -run '$(ZK_RECONNECT_TESTS)' ./cluster/

# Flake hunt: every package's tests 5 times under -race in shuffled order
# (STRESS_COUNT to change), one package at a time so a slow package does
# not starve the others of the 2 cores; then the ZooKeeper reconnect tests
# (non-race, see test) as often. Needs the services, like test.
STRESS_COUNT ?= 5
stress:
	@set -e; for p in $$($(GO) list $(PKGS)); do \
		echo "== $$p"; \
		$(GO) test -race -shuffle=on -count=$(STRESS_COUNT) -timeout 60m $(TESTFLAGS) $$p; \
	done
	$(GO) test -shuffle=on -count=$(STRESS_COUNT) -timeout 30m -run '$(ZK_RECONNECT_TESTS)' ./cluster/

test-short:
	$(GO) test -short $(PKGS)

# Throughput profiles: micro-benchmarks and end-to-end dry-run scenarios,
# one table with ratios to baselines measured in the same run, written to
# perf/REPORT.md. BENCH_SCALE=0.2 for a quick run.
bench:
	$(GO) run ./bench/cmd/dbusbench -out perf/REPORT.md

bench-quick:
	$(GO) run ./bench/cmd/dbusbench -quick -out perf/REPORT-quick.md

# CPU and allocation profiles of a 10 s dry run of the default pipeline.
profile:
	$(GO) run ./bench/cmd/dbusbench -profile perf -duration 10s

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Short fuzzing of every fuzz target (FUZZTIME=1m for longer).
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run XXX -fuzz FuzzConfigParse -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run XXX -fuzz FuzzAPIRequest -fuzztime $(FUZZTIME) ./engine/admin/
	$(GO) test -run XXX -fuzz FuzzAPITapQuery -fuzztime $(FUZZTIME) ./engine/admin/
	$(GO) test -run XXX -fuzz FuzzAPIAdminSection -fuzztime $(FUZZTIME) ./engine/admin/
	$(GO) test -run XXX -fuzz FuzzParseJSON -fuzztime $(FUZZTIME) ./plugins/parse/
	$(GO) test -run XXX -fuzz FuzzBinlogNativeRow -fuzztime $(FUZZTIME) ./plugins/mysqlbinlog/
	$(GO) test -run XXX -fuzz FuzzBinlogDDL -fuzztime $(FUZZTIME) ./plugins/mysqlbinlog/

# Long soaks and kill loops (minutes; needs the services, see
# services-start); CI runs short versions of each: a 30 s Kafka broker
# outage, a one-minute ZooKeeper outage, 20x longer cluster process runs,
# and the kill -9 loops.
# Cluster failover at scale (TestClusterProcessFailoverSoak, selected by
# ClusterProcess): 20 dbusd x 200 resources, 6 kill -9 (CI: 5 x 40, 2
# kills); DBUS_SOAK_MEMBERS/RESOURCES/KILLS resize it.
soak:
	DBUS_SOAK=1 DBUS_KAFKA_SOAK=1 DBUS_TEST_ZK_OUTAGE=60s $(GO) test -count=1 -timeout 60m \
		-run 'Kill|BrokerDown|Outage|ClusterProcess|Rebalance|BinlogSnapshot' -v ./plugins/kafka/ ./plugins/mysqlbinlog/ ./cluster/

services-start:
	bash .ci/services.sh start

services-stop:
	bash .ci/services.sh stop

clean:
	rm -rf $(BIN)
