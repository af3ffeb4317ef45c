module github.com/the-eye/eye/pkg/client

go 1.26.8

require github.com/google/uuid v1.6.0
