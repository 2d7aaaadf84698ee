# Build, test and deploy the Mattermost Bridge plugin.
#
#   make dist          build the bundle dist/<id>-<version>.tar.gz
#   make test          run the whole test suite against that bundle
#   make check-style   go vet, golangci-lint, eslint and tsc
#   make help          list every target
#
# Layout and conventions follow mattermost-plugin-starter-template.

GO ?= $(shell command -v go 2> /dev/null)
NPM ?= $(shell command -v npm 2> /dev/null)

# golangci-lint is installed into bin/ at this exact version.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(CURDIR)/bin/golangci-lint

GO_TEST_TIMEOUT ?= 30m
GO_TEST_FLAGS ?= -race -count=1 -timeout $(GO_TEST_TIMEOUT)
GO_BUILD_FLAGS ?=
BUILD_HASH := $(shell git rev-parse --short HEAD 2> /dev/null)
GO_LDFLAGS := -X main.buildHash=$(BUILD_HASH)

# Everything in this folder is copied into the bundle.
ASSETS_DIR ?= assets

# Server executables in the bundle, as named in plugin.json.
SERVER_PLATFORMS := linux-amd64 linux-arm64 darwin-amd64 darwin-arm64 windows-amd64

ifeq ($(GO),)
    $(error go is not available: see https://go.dev/doc/install)
endif

# The manifest tool reads plugin.json. Building it here, while the Makefile
# is read, lets the variables below come from the manifest; Go's build cache
# makes this quick.
MANIFEST_TOOL := build/bin/manifest
$(shell $(GO) build -o $(MANIFEST_TOOL) ./build/manifest)

PLUGIN_ID := $(shell $(MANIFEST_TOOL) id)
ifeq ($(PLUGIN_ID),)
    $(error cannot read the plugin id from plugin.json: run "go run ./build/manifest check")
endif
# The version of the latest git tag (without "v") if there is one, else plugin.json's.
PLUGIN_VERSION := $(shell $(MANIFEST_TOOL) version)
HAS_SERVER := $(shell $(MANIFEST_TOOL) has_server)
HAS_WEBAPP := $(shell $(MANIFEST_TOOL) has_webapp)

ifneq ($(HAS_WEBAPP),)
ifeq ($(NPM),)
    $(error npm is not available: see https://nodejs.org/)
endif
endif

BUNDLE_NAME := $(PLUGIN_ID)-$(PLUGIN_VERSION).tar.gz
BUNDLE := dist/$(BUNDLE_NAME)

.DEFAULT_GOAL := all

## Checks the code style, runs the tests and builds the bundle.
.PHONY: all
all: check-style test dist

## Validates plugin.json.
.PHONY: manifest-check
manifest-check:
	$(MANIFEST_TOOL) check

## Generates server/manifest.go and webapp/src/manifest.ts from plugin.json.
.PHONY: apply
apply:
	$(MANIFEST_TOOL) apply

## Builds the server executables for every platform in plugin.json.
.PHONY: server
server: apply
ifneq ($(HAS_SERVER),)
	mkdir -p server/dist
	@set -e; for p in $(SERVER_PLATFORMS); do \
		os=$${p%-*}; arch=$${p#*-}; ext=; [ "$$os" = windows ] && ext=.exe; \
		echo "building server/dist/plugin-$$p$$ext"; \
		env CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(GO_BUILD_FLAGS) -trimpath \
			-ldflags "$(GO_LDFLAGS)" -o server/dist/plugin-$$p$$ext ./server; \
	done
endif

## Builds only the linux-amd64 server executable (quicker, for local work).
.PHONY: server-linux
server-linux: apply
	mkdir -p server/dist
	env CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build $(GO_BUILD_FLAGS) -trimpath \
		-ldflags "$(GO_LDFLAGS)" -o server/dist/plugin-linux-amd64 ./server

# Installs the webapp's npm dependencies exactly as package-lock.json pins
# them, again only when package.json or the lock file changes.
webapp/node_modules: webapp/package.json webapp/package-lock.json
ifneq ($(HAS_WEBAPP),)
	cd webapp && $(NPM) ci --no-audit --no-fund
	touch $@
endif

## Builds the webapp bundle webapp/dist/main.js.
.PHONY: webapp
webapp: apply webapp/node_modules
ifneq ($(HAS_WEBAPP),)
	cd webapp && $(NPM) run build
endif

## Builds the server and the webapp and bundles them into dist/<id>-<version>.tar.gz.
.PHONY: dist
dist: server webapp
	@$(MAKE) --no-print-directory bundle

# Packs what server and webapp built; use dist, which builds them first.
.PHONY: bundle
bundle:
	rm -rf dist/
	mkdir -p dist/$(PLUGIN_ID)
	$(MANIFEST_TOOL) dist
ifneq ($(wildcard $(ASSETS_DIR)/.),)
	cp -r $(ASSETS_DIR) dist/$(PLUGIN_ID)/
endif
ifneq ($(HAS_SERVER),)
	mkdir -p dist/$(PLUGIN_ID)/server/dist
	cp $(foreach p,$(SERVER_PLATFORMS),server/dist/plugin-$(p)$(if $(findstring windows,$(p)),.exe)) dist/$(PLUGIN_ID)/server/dist/
endif
ifneq ($(HAS_WEBAPP),)
	mkdir -p dist/$(PLUGIN_ID)/webapp/dist
	cp webapp/dist/main.js dist/$(PLUGIN_ID)/webapp/dist/
endif
ifeq ($(shell uname),Darwin)
	cd dist && tar --disable-copyfile -czf $(BUNDLE_NAME) $(PLUGIN_ID)
else
	cd dist && tar --sort=name --owner=0 --group=0 --numeric-owner -czf $(BUNDLE_NAME) $(PLUGIN_ID)
endif
	@echo plugin built at: $(BUNDLE)

## Runs every test: Go (the integration tests and the browser test server/webe2e against the real bundle) and the webapp's Jest tests.
.PHONY: test
test: dist
ifneq ($(HAS_SERVER),)
	BRIDGE_TEST_BUNDLE=$(abspath $(BUNDLE)) $(GO) test $(GO_TEST_FLAGS) ./...
endif
ifneq ($(HAS_WEBAPP),)
	cd webapp && $(NPM) test
endif

## Runs go vet, golangci-lint, eslint and tsc.
.PHONY: check-style
check-style: manifest-check apply webapp/node_modules golangci-lint
	@echo Checking for style guide compliance
	$(GO) vet ./...
# The files only some builds compile: the soak's, the benchmarks' plugin's
# (golangci-lint's gofmt sees only the default build's files).
	$(GO) vet -tags soak,benchprofile,slackunpaced ./server/
	@unformatted=$$("$$($(GO) env GOROOT)/bin/gofmt" -l server cmd build); if [ -n "$$unformatted" ]; then echo "not gofmt-ed: $$unformatted"; exit 1; fi
	$(GOLANGCI_LINT) run --allow-parallel-runners ./...
	cd build/bench/report && $(GO) vet ./... && $(GOLANGCI_LINT) run --allow-parallel-runners ./...
ifneq ($(HAS_WEBAPP),)
	cd webapp && $(NPM) run lint
	cd webapp && $(NPM) run check-types
endif

## Installs the pinned golangci-lint into bin/ unless that version is already there.
.PHONY: golangci-lint
golangci-lint:
	@if ! $(GOLANGCI_LINT) version 2> /dev/null | grep -q "version $(patsubst v%,%,$(GOLANGCI_LINT_VERSION)) "; then \
		echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into bin/"; \
		GOBIN=$(CURDIR)/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); \
	fi

# Dendrite, the Matrix homeserver the Matrix bridge's tests run
# (server/bridge/matrix/dendritetest), is pinned in build/tools/dendrite/go.mod:
# a module of its own, so its many dependencies stay out of the plugin's go.mod.
# CGO_ENABLED=0 selects Dendrite's pure-Go SQLite driver (modernc.org/sqlite):
# it builds faster from cold than mattn/go-sqlite3 and needs no C compiler.
DENDRITE_DIR := build/tools/dendrite
MATTERBRIDGE_DIR := build/tools/matterbridge
DENDRITE_CMDS := dendrite generate-keys generate-config

## Builds the Dendrite Matrix homeserver (bin/dendrite, bin/generate-keys, bin/generate-config) for the Matrix bridge's tests.
.PHONY: dendrite
dendrite: bin/dendrite

bin/dendrite: $(DENDRITE_DIR)/go.mod $(DENDRITE_DIR)/go.sum
	@echo "testdeps: building Dendrite into bin/ (about 2.5 minutes the first time)"
	cd $(DENDRITE_DIR) && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 \
		$(GO) build -trimpath -o $(CURDIR)/bin/ $(addprefix github.com/element-hq/dendrite/cmd/,$(DENDRITE_CMDS))

## Builds matterbridge v1.26.0 (bin/matterbridge), the peer make bench measures beside the bridge (about 3 minutes and 2.7 GB of memory the first time).
.PHONY: matterbridge
matterbridge: bin/matterbridge

bin/matterbridge: $(MATTERBRIDGE_DIR)/go.mod $(MATTERBRIDGE_DIR)/go.sum
	@echo "bench: building matterbridge into bin/ (about 3 minutes the first time)"
	cd $(MATTERBRIDGE_DIR) && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 \
		$(GO) build -trimpath -tags nonctalk -o $(CURDIR)/bin/matterbridge github.com/42wim/matterbridge

## Installs or builds what the tests need and is missing (Debian packages, Dendrite...); does nothing when all is there. See build/testdeps.
.PHONY: test-deps
test-deps: dendrite
	@echo "testdeps: bin/dendrite is up to date with $(DENDRITE_DIR)/go.mod"
	@set -e; for s in build/testdeps/[0-9]*.sh; do bash "$$s"; done

# go test ./... runs the servers build/testdeps provides, and
# server/bridge/matrix/dendritetest, which needs bin/dendrite.
test: test-deps

## Runs the soak (not part of make test, about 20 minutes): four channels linked with XMPP (Prosody, then ejabberd), Matrix (Dendrite) and Slack (its test server) on a two-node cluster, messages from every side while each server restarts and a node dies; prints per path sent/received/lost/duplicated/reordered and latency, and writes soak-results/soak.json. SOAK_MESSAGES, SOAK_RATE and SOAK_XMPP change the load.
.PHONY: soak
soak: test-deps
	@rm -f $${SOAK_OUT:-soak-results}/soak.md
	$(GO) test -tags soak -run '^TestSoak$$' -count=1 -timeout 45m ./server/; status=$$?; \
		cat $${SOAK_OUT:-soak-results}/soak.md 2> /dev/null; exit $$status

build/bin/pluginctl: $(wildcard build/pluginctl/*.go) go.mod go.sum
	$(GO) build -o $@ ./build/pluginctl

## Runs every message path's benchmarks beside each server alone (about 15 minutes) and writes bench-results/: results.json, results.md and a latency curve per path. BENCHTIME and COUNT change the load.
.PHONY: bench
bench: test-deps matterbridge
	build/bench/run.sh

## Builds the bundle and installs it on a server (see README: MM_LOCALSOCKETPATH, or MM_SERVICESETTINGS_SITEURL with MM_ADMIN_TOKEN or MM_ADMIN_USERNAME/MM_ADMIN_PASSWORD).
.PHONY: deploy
deploy: dist build/bin/pluginctl
	build/bin/pluginctl deploy $(PLUGIN_ID) $(BUNDLE)

## Enables the plugin on the server.
.PHONY: enable
enable: build/bin/pluginctl
	build/bin/pluginctl enable $(PLUGIN_ID)

## Disables the plugin on the server.
.PHONY: disable
disable: build/bin/pluginctl
	build/bin/pluginctl disable $(PLUGIN_ID)

## Disables and re-enables the plugin on the server.
.PHONY: reset
reset: build/bin/pluginctl
	build/bin/pluginctl reset $(PLUGIN_ID)

## Removes build output and installed npm packages (bin/golangci-lint is kept).
.PHONY: clean
clean:
	rm -rf dist/ server/dist/ webapp/dist/ webapp/node_modules/ build/bin/ coverage.txt

## Lists the targets.
.PHONY: help
help:
	@awk '/^## /{doc=substr($$0, 4); next} /^\.PHONY/{next} /^[a-zA-Z0-9_.-]+:/{if (doc != "") {split($$0, t, ":"); printf "  %-16s %s\n", t[1], doc}; doc=""; next} {doc=""}' $(MAKEFILE_LIST)
