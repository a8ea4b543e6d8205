# tdlib-operator. `make run` starts the local demo; `make test` runs everything CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_BIN := node_modules/.bin
CLUSTER_DIR ?= .cluster

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-18s %s\n",$$1,$$2}'

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

.PHONY: deps
deps: node_modules/.package-lock.json ## install npm packages (npm ci)

.PHONY: build
build: deps ## compile TypeScript to dist/
	npm run -s build

.PHONY: native
native: deps ## build the C++ addon over libtdjson
	npm run -s build:native

.PHONY: controlplane
controlplane: ## build (or reuse from cache) kube-apiserver, controller-manager, scheduler, etcd and kwok
	bash test/cluster/build.sh >/dev/null

.PHONY: tools
tools: ## build (or reuse from cache) promtool, prometheus and helm from their Go modules
	bash test/cluster/build-tools.sh >/dev/null

.PHONY: image
image: ## build the image from the Dockerfile on local base images (tdlib-operator:test; needs a Docker engine)
	nice -n 10 bash test/image/build-image.sh >/dev/null

.PHONY: generate
generate: build ## regenerate the CRD YAML, the operator ClusterRole and the runtime Lease admission policy (config/ and the Helm chart) from crds/*.ts
	node dist/crds/generate.js

# Every file crds/generate.ts writes (crds/manifests.ts generatedFiles); CI fails if any of them is stale.
GENERATED := config/crd config/rbac/role.yaml charts/tdlib-operator/templates/crds charts/tdlib-operator/templates/clusterrole.yaml

.PHONY: check-generated
check-generated: generate ## fail if the committed generated YAML (CRDs, ClusterRole, chart templates) is stale
	@git diff --exit-code --stat -- $(GENERATED) || { echo "generated files are stale: run make generate and commit"; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard -- $(GENERATED))" || { echo "untracked generated files: run make generate and commit"; exit 1; }

.PHONY: lint
lint: deps ## eslint + prettier
	npm run -s lint

.PHONY: typecheck
typecheck: deps ## tsc --noEmit over the whole tree
	npm run -s typecheck

.PHONY: test-unit
test-unit: deps
	npm run -s test:unit

.PHONY: test-native
test-native: native build controlplane
	npm run -s test:native

.PHONY: test-integration
test-integration: build controlplane tools image
	npm run -s test:integration

.PHONY: test-e2e
test-e2e: build native controlplane tools node-binaries image
	npm run -s test:e2e

.PHONY: test
test: lint typecheck check-generated test-unit test-native test-integration test-e2e ## everything CI runs

.PHONY: run
run: build controlplane ## the main job: control plane, operator, a simulator runtime and the samples (Ctrl-C stops)
	node dist/tools/demo/run.js

.PHONY: cluster-up
cluster-up: build controlplane $(if $(filter real,$(NODE)),node-binaries) ## start a local control plane (kubeconfig in .cluster/kubeconfig); NODE=real adds a real node
	node dist/test/cluster/cli.js up --dir $(CLUSTER_DIR) --controllers --kwok-nodes 3 $(if $(filter real,$(NODE)),--real-node)

.PHONY: node-binaries
node-binaries: ## build kubelet, containerd and pause for a real node (cached by version)
	bash test/cluster/build-node.sh >/dev/null

.PHONY: cluster-down
cluster-down: ## stop the local control plane
	@if [ -f dist/test/cluster/cli.js ]; then node dist/test/cluster/cli.js down --dir $(CLUSTER_DIR); fi

KIND_CLUSTER ?= tdlib-operator
IMAGE ?= tdlib-operator:dev

.PHONY: kind-up
kind-up: ## (needs Docker, kind and internet; cannot run on the CI machines) kind cluster + image + chart + samples
	kind create cluster --name $(KIND_CLUSTER)
	docker build -t $(IMAGE) .
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER)
	helm install tdlib-operator charts/tdlib-operator -n tdlib-operator-system --create-namespace \
	  --set image.repository=$(firstword $(subst :, ,$(IMAGE))) --set image.tag=$(lastword $(subst :, ,$(IMAGE))) \
	  --set image.pullPolicy=Never
	kubectl create namespace tdlib-demo --dry-run=client -o yaml | kubectl apply -f -
	kubectl -n tdlib-demo apply -k config/samples

.PHONY: kind-down
kind-down: ## delete the kind cluster of make kind-up
	kind delete cluster --name $(KIND_CLUSTER)

.PHONY: clean
clean: cluster-down
	rm -rf dist native/build $(CLUSTER_DIR)
