# The Eye. `make run` starts the whole pipeline on the embedded default;
# `make test` runs every module's tests. `./...` does not cross go.work
# modules, so targets loop over them.

SERVICES := ingest-gateway validator writer query-api
MODULES  := pkg pkg/client pkg/devstack pkg/testkit $(addprefix services/,$(SERVICES))
SWAG     := go run github.com/swaggo/swag/cmd/swag@v1.16.6
GO_TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: run build test test-faults bench fuzz vet swagger swagger-check api-conformance asyncapi-check kafka-start kafka-stop clean

run: build ## the whole pipeline: embedded Kafka, private Postgres, four services
	./bin/eye-dev

build:
	@mkdir -p bin
	@for s in $(SERVICES); do go build -o bin/$$s ./services/$$s/cmd/$$s || exit 1; done
	go build -o bin/eye-dev ./pkg/cmd/eye-dev
	go build -o bin/eye-admin ./pkg/cmd/eye-admin

test: ## unit, integration and end-to-end tests of every module
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && go test $(GO_TEST_FLAGS) ./...); done

# FAULTS_RUN narrows the scenarios, e.g. FAULTS_RUN=TestFaults/kafka-sigkill
# (docs/reliability.md is rewritten only when all of them ran).
FAULTS_RUN ?= ^TestFaults$$
test-faults: ## fault-injection suite against real Apache Kafka and Postgres; writes docs/reliability.md
	cd pkg && EYE_FAULTS=1 go test -count=1 -timeout 45m -v -run '$(FAULTS_RUN)' ./faults

# BENCH_QUICK=1 checks the wiring in a few minutes (figures not meaningful);
# BENCH_SCENARIOS=1,2,3,4,5, BENCH_BROKERS=kfake,apache, BENCH_PHASE=15s,
# BENCH_STEP=30s, BENCH_BACKLOG=300000, BENCH_PROFILE=0 (no perf),
# BENCH_KEEP=1 (keep every process log). Results go to bench-results/; only a
# full run with the defaults rewrites docs/benchmarks.md and docs/bench.png.
# Not run by CI: timings on a shared 2-core machine are noisy.
bench: ## pipeline benchmark vs physical limits, kfake and Apache Kafka (~10 min); writes docs/benchmarks.md
	go build -o bin/eye-bench ./pkg/cmd/eye-bench
	./bin/eye-bench

# Fuzz budgets are counts of inputs, not durations: a duration can expire
# while the engine is mid-run and fail with "context deadline exceeded" on a
# busy machine, with nothing wrong in the code.
FUZZ_GATEWAY ?= 50000x
FUZZ_RULES   ?= 1000000x
FUZZ_DECODE  ?= 300000x
FUZZ_ENCODE  ?= 200000x
FUZZ_JSONX   ?= 500000x
FUZZ_CLEAN   ?= 500000x
fuzz: ## run each fuzz target for a fixed number of inputs
	cd services/ingest-gateway && go test -run XXX -fuzz FuzzPostEvents -fuzztime $(FUZZ_GATEWAY) ./internal/httpapi
	cd pkg && go test -run XXX -fuzz FuzzValidate -fuzztime $(FUZZ_RULES) ./event
	cd pkg && go test -run XXX -fuzz FuzzDecode -fuzztime $(FUZZ_DECODE) ./contract
	cd pkg && go test -run XXX -fuzz FuzzEncode -fuzztime $(FUZZ_ENCODE) ./contract
	cd pkg && go test -run XXX -fuzz FuzzSameAsStd -fuzztime $(FUZZ_JSONX) ./jsonx
	cd pkg && go test -run XXX -fuzz FuzzClean -fuzztime $(FUZZ_CLEAN) ./event

vet:
	@set -e; for m in $(MODULES); do (cd $$m && go vet ./...); done

# swag reads services/<name>/.swaggo (global type overrides) when present;
# each Swagger 2 document is then converted to OpenAPI 3 (openapi3.json,
# served at /docs/openapi.json).
swagger: ## regenerate the API docs: Swagger 2 from the handler annotations, OpenAPI 3 from it
	cd services/ingest-gateway && $(SWAG) init -q -g cmd/ingest-gateway/main.go -o internal/docs --outputTypes go,json --parseDependency --parseInternal --requiredByDefault
	cd services/query-api && $(SWAG) init -q -g cmd/query-api/main.go -o internal/docs --outputTypes go,json --parseDependency --parseInternal --requiredByDefault
	@for s in ingest-gateway query-api; do \
	  go run ./pkg/cmd/eye-openapi3 services/$$s/internal/docs/swagger.json services/$$s/internal/docs/openapi3.json || exit 1; done

swagger-check: swagger ## fails when the committed swagger docs are stale
	git diff --exit-code -- services/*/internal/docs
	@test -z "$$(git status --porcelain --untracked-files=all -- services/*/internal/docs)" || { git status --short -- services/*/internal/docs; exit 1; }

# CONFORMANCE_EXAMPLES=N changes the budget (test cases per operation and
# phase); the run is deterministic. See scripts/api-conformance.sh.
api-conformance: ## schemathesis against both running services on a throwaway pipeline: answers must match the OpenAPI documents
	scripts/api-conformance.sh

# The AsyncAPI parser (npm), pinned by scripts/asyncapi/package-lock.json;
# installed (without install scripts) only when the lock file changed.
asyncapi-check: ## fails when docs/asyncapi.yaml (and the JSON Schemas it references) has an error
	cd scripts/asyncapi && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --ignore-scripts --no-audit --no-fund; } && node check.js ../../docs/asyncapi.yaml

kafka-start: ## a real single-node Apache Kafka (KRaft) on 127.0.0.1:9092
	scripts/kafka.sh start

kafka-stop:
	scripts/kafka.sh stop

clean:
	rm -rf bin
