# esosync: a native Pulumi provider for External Secrets Operator.
#   make demo   start a local cluster + Vault and run the main job against them
#   make test   build everything and run the test suite against the real test bed
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# The version lives in provider/provider.go; the ldflag keeps release builds able to override it.
VERSION   ?= $(shell sed -n 's/^var Version = "\(.*\)"$$/\1/p' provider/provider.go)
MODULE    := github.com/esosync/pulumi-esosync
PROVIDER  := bin/pulumi-resource-esosync
TOOLS_BIN := $(CURDIR)/.tools/bin
LDFLAGS   := -X $(MODULE)/provider.Version=$(VERSION)

# The pulumi CLI runs fully offline: local state, no update checks, no plugin downloads.
export PATH := $(TOOLS_BIN):$(PATH)
export PULUMI_HOME ?= $(CURDIR)/.pulumi-home
export PULUMI_SKIP_UPDATE_CHECK := true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION := true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK := true
export PULUMI_DIY_BACKEND_NO_LEGACY_WARNING := true
export ESOSYNC_PROVIDER_BINARY := $(CURDIR)/$(PROVIDER)
export ESOSYNC_PROVIDER_VERSION := $(VERSION)

GO_TEST_FLAGS ?= -count=1 -v -timeout 45m

.PHONY: build tools demo-tools schema sdk unit test check-generated demo bench lint clean

## build: the provider plugin binary in bin/
build:
	go build -ldflags "$(LDFLAGS)" -o $(PROVIDER) ./cmd/pulumi-resource-esosync

## tools: everything the tests run (cached; see tests/tools): Kubernetes (control plane and node), the pulumi CLI,
## language hosts and gensdk, Vault, the ESO controller, the node's images, moto, the Python and Node SDK environments
tools: demo-tools
	tests/tools/build.sh vault
	tests/tools/build.sh moto
	tests/tools/build.sh python
	tests/tools/build.sh node
	tests/tools/build.sh golangci-lint
	tests/tools/build.sh pulumi-kubernetes

## demo-tools: only what `make demo` runs: Kubernetes, the pulumi CLI, the ESO controller and the node's images
demo-tools:
	tests/tools/build.sh kubernetes
	tests/tools/build.sh pulumi
	tests/tools/build.sh eso
	tests/tools/build.sh images

## schema: schema.json from the built provider
schema: build
	$(TOOLS_BIN)/pulumi package get-schema $(CURDIR)/$(PROVIDER) > schema.json.tmp
	mv schema.json.tmp schema.json

## sdk: nodejs, python and go SDKs from schema.json
sdk:
	$(TOOLS_BIN)/gensdk nodejs schema.json sdk/nodejs
	$(TOOLS_BIN)/gensdk python schema.json sdk/python
	$(TOOLS_BIN)/gensdk go schema.json sdk/go

## check-generated: fail if schema.json or sdk/ differ from what the built provider generates
check-generated: build
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(TOOLS_BIN)/pulumi package get-schema $(CURDIR)/$(PROVIDER) > $$tmp/schema.json; \
	for l in nodejs python go; do $(TOOLS_BIN)/gensdk $$l $$tmp/schema.json $$tmp/sdk/$$l >/dev/null; done; \
	if ! diff -u schema.json $$tmp/schema.json || ! diff -ru sdk $$tmp/sdk; then \
		echo "schema.json or sdk/ is stale: run 'make schema sdk' and commit the result" >&2; exit 1; \
	fi; \
	echo "check-generated: schema.json and sdk/ match the provider"

## unit: every test that needs no test bed (no tools, no cluster): seconds warm
unit:
	go test -short -count=1 ./...

## test: the whole suite against the real test bed (cluster, Vault, pulumi CLI)
test: tools check-generated
	go test $(GO_TEST_FLAGS) ./...

## demo: start the local test bed and run the main job against it
demo: demo-tools build
	go run ./tests/demo

## bench: fleet scale side by side (not part of `make test`): N ExternalSecrets over M keys; the floor, esosync and
## pulumi-kubernetes + ESO, with CPU, API and backend calls per run (tests/bench; BENCH_FLAGS=-phases=... to select)
N ?= 1000
M ?= 100
bench: tools build
	go run ./tests/bench -n $(N) -m $(M) $(BENCH_FLAGS)

## lint: gofmt, go vet and golangci-lint (.golangci.yml; built by `make tools`)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	tests/tools/build.sh golangci-lint >/dev/null
	$(TOOLS_BIN)/golangci-lint run ./...
	cd tests/tools/pulumi && go vet ./cmd/...
	cd tests/tools/images && go vet ./...
	@echo "lint: clean"

## clean: remove build outputs and links to the tools cache (the cache itself stays; see tests/tools/build.sh)
clean:
	rm -rf bin .tools .pulumi-home
