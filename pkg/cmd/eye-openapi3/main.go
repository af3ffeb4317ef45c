// Command eye-openapi3 converts a service's Swagger 2 document, as swag
// generates it, into OpenAPI 3, so clients that only read OpenAPI 3 get the
// same contract: `make swagger` runs it after swag, and `make
// swagger-check` fails when the committed openapi3.json is stale.
//
//	eye-openapi3 SWAGGER_JSON OPENAPI3_JSON
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: eye-openapi3 SWAGGER_JSON OPENAPI3_JSON")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "eye-openapi3:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	src, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	doc, err := convert(src)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	return os.WriteFile(out, doc, 0o644)
}

// convert turns a Swagger 2 document into a validated OpenAPI 3 one,
// indented, with a final newline. x-nullable becomes nullable, body
// parameters become request bodies and produces become response content
// types (openapi2conv).
func convert(swagger []byte) ([]byte, error) {
	var v2 openapi2.T
	if err := json.Unmarshal(swagger, &v2); err != nil {
		return nil, fmt.Errorf("not a Swagger 2 document: %w", err)
	}
	v3, err := openapi2conv.ToV3(&v2)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	if err := v3.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI 3 document is invalid: %w", err)
	}
	raw, err := json.Marshal(v3)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "    "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
