module github.com/the-eye/eye/services/ingest-gateway

go 1.26.8

require (
	github.com/google/uuid v1.6.0
	github.com/the-eye/eye/pkg v0.0.0
)

replace github.com/the-eye/eye/pkg => ../../pkg
