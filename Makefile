# wsgate: `make demo` runs the gateway with its demo services, `make test` runs every test.
# Both install what they need (a Python venv for the conformance suite) on a fresh machine.
.PHONY: demo test build release conformance clean

demo:
	scripts/demo.sh

test:
	scripts/test.sh

build:
	swift build

release:
	scripts/build-release.sh --product wsgate

conformance:
	scripts/conformance.sh

clean:
	rm -rf .build .venv-conformance
