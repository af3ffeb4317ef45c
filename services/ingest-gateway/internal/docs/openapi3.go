package docs

import _ "embed"

// OpenAPI3 is swagger.json converted to OpenAPI 3 by `make swagger`
// (pkg/cmd/eye-openapi3); the service serves it at /docs/openapi.json.
//
//go:embed openapi3.json
var OpenAPI3 []byte
