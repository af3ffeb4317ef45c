package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const swagger = `{
  "swagger": "2.0",
  "info": {"title": "t", "version": "1"},
  "basePath": "/",
  "paths": {
    "/things/{id}": {
      "get": {
        "produces": ["application/json"],
        "security": [{"BearerKey": []}],
        "parameters": [{"type": "string", "name": "id", "in": "path", "required": true}],
        "responses": {
          "200": {"description": "OK", "schema": {"$ref": "#/definitions/Thing"}},
          "401": {"description": "no key", "schema": {"$ref": "#/definitions/Error"}}
        }
      }
    }
  },
  "definitions": {
    "Thing": {"type": "object", "properties": {
      "gone_at": {"type": "string", "x-nullable": true},
      "schema": {"description": "any JSON"}
    }},
    "Error": {"type": "object", "properties": {"code": {"type": "string"}}}
  },
  "securityDefinitions": {"BearerKey": {"type": "apiKey", "name": "Authorization", "in": "header"}}
}`

func TestConvertKeepsTheContract(t *testing.T) {
	out, err := convert([]byte(swagger))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(out), "}\n") {
		t.Error("no final newline")
	}
	var doc struct {
		OpenAPI    string `json:"openapi"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"schemas"`
			SecuritySchemes map[string]any `json:"securitySchemes"`
		} `json:"components"`
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]any `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	thing := doc.Components.Schemas["Thing"].Properties
	if thing["gone_at"]["nullable"] != true || thing["gone_at"]["x-nullable"] != nil {
		t.Errorf("x-nullable not turned into nullable: %v", thing["gone_at"])
	}
	if _, typed := thing["schema"]["type"]; typed {
		t.Errorf("an any-JSON property got a type: %v", thing["schema"])
	}
	for _, status := range []string{"200", "401"} {
		if _, ok := doc.Paths["/things/{id}"]["get"].Responses[status].Content["application/json"]; !ok {
			t.Errorf("response %s lost its application/json content", status)
		}
	}
	if doc.Components.SecuritySchemes["BearerKey"] == nil {
		t.Error("security scheme lost")
	}
}

func TestConvertRefusesWhatIsNotSwagger(t *testing.T) {
	if _, err := convert([]byte(`[1,2]`)); err == nil {
		t.Error("a JSON array converted")
	}
	// A response referencing a definition that does not exist does not
	// make a valid OpenAPI 3 document.
	broken := strings.Replace(swagger, `"$ref": "#/definitions/Error"`, `"$ref": "#/definitions/Missing"`, 1)
	if _, err := convert([]byte(broken)); err == nil {
		t.Error("a dangling $ref converted")
	}
}

func TestRunWritesTheFile(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "swagger.json"), filepath.Join(dir, "openapi3.json")
	if err := os.WriteFile(in, []byte(swagger), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in, out); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || !json.Valid(b) {
		t.Fatalf("%v, valid JSON: %v", err, json.Valid(b))
	}
}
