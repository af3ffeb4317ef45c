package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/pkg/schema"
)

func TestRoutes(t *testing.T) {
	gin.SetMode(gin.TestMode)
	reg := schema.NewRegistry()
	s, err := schema.Compile("page interaction", "pageview", 3, []byte(`{"type": "object"}`))
	if err != nil {
		t.Fatal(err)
	}
	reg.Put(s)
	api, err := New(reg, func(c *gin.Context) { c.Status(http.StatusServiceUnavailable) })
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	api.Register(r)

	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	if w := get("/readyz"); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz: %d", w.Code)
	}
	w := get("/schemas")
	var body struct {
		Results []struct {
			Category string `json:"category"`
			Name     string `json:"name"`
			Version  int    `json:"version"`
		} `json:"results"`
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &body) != nil || len(body.Results) != 1 ||
		body.Results[0].Name != "pageview" || body.Results[0].Version != 3 {
		t.Fatalf("schemas: %d %s", w.Code, w.Body)
	}
}
