# wsgate: `make demo` runs the gateway with its demo services, `make test` runs every test.
# Both install what they need (a Python venv for the conformance suite) on a fresh machine.
.PHONY: demo test build release bench bench-peers bench-share conformance chaos attacks clean

demo:
	scripts/demo.sh

test:
	scripts/test.sh

build:
	swift build

release:
	scripts/build-release.sh --product wsgate

# wsgate's own load generator against a release wsgate pinned to the last core (see BENCHMARKS.md),
# with HAProxy measured beside it on the WS→WS and HTTP/2 paths when it is installed.
bench:
	scripts/build-release.sh --product wsgate
	scripts/build-release.sh --product wsgate-bench
	.build/release/wsgate-bench --pin-cpu $$(( $$(nproc) - 1 )) $$(command -v haproxy >/dev/null || test -x /usr/sbin/haproxy && echo --haproxy) | tee .build/wsgate-bench.md

# Side by side with nginx, HAProxy and websockify through the shared harness (../shared/bench or
# BENCH_DIR), 1 and 2 threads, the cost of run-time exclusivity checks (a second release build
# without them, in .build-unchecked), then BENCHMARKS.md.
bench-peers:
	scripts/bench.sh
	scripts/bench.sh --scaling
	scripts/bench.sh --exclusivity
	scripts/publish-bench.sh

# Shared sessions against ordinary ones: line latency for 100 clients each way, and with one viewer
# that never reads (it must be dropped without slowing the others).
bench-share:
	scripts/build-release.sh --product wsgate
	scripts/setup-python.sh
	.venv-conformance/bin/python scripts/bench-share.py --wsgate .build/release/wsgate

conformance:
	scripts/conformance.sh

# The chaos soak on a release build: misbehaving clients and backends beside well-behaved sessions
# (SOAK_ARGS, e.g. "--rounds 10 --duration 60 --seed 42"; see Tests/chaos/soak.py).
chaos:
	scripts/chaos-soak.sh $(SOAK_ARGS)

# Exhaustion attacks on a release build, one at a time beside a legitimate client (ATTACK_ARGS,
# e.g. "--only hpack_bomb --seconds 20"; see Tests/chaos/attacks.py and docs/SECURITY.md).
attacks:
	scripts/attacks.sh $(ATTACK_ARGS)

clean:
	rm -rf .build .venv-conformance
