package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// schemaRecord is a schema version as the API shows it.
type schemaRecord struct {
	Category    string          `json:"category"`
	Name        string          `json:"name"`
	Version     int             `json:"version"`
	Schema      json.RawMessage `json:"schema"`
	CreatedAt   time.Time       `json:"created_at"`
	PublishedAt *time.Time      `json:"published_at"`
}

// stdin is where "schemas add -" reads; tests replace it.
var stdin io.Reader = os.Stdin

func (x *cli) schemasAdd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("schemas add", flag.ContinueOnError)
	category := fs.String("category", "", "event category")
	name := fs.String("name", "", "event name")
	dryRun := fs.Bool("dry-run", false, "only check the schema against the type's recent stored events; store nothing")
	force := fs.Bool("force", false, "store it even if some of the type's recent stored events fail it")
	pos, err := x.parse(fs, args, 1, "FILE")
	if err != nil {
		return err
	}
	if *category == "" || *name == "" {
		return usageErr("schemas add: -category and -name are required")
	}
	var src []byte
	if pos[0] == "-" {
		src, err = io.ReadAll(stdin)
	} else {
		src, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return fmt.Errorf("schemas add: %w", err)
	}
	if !json.Valid(src) {
		return fmt.Errorf("schemas add: %s is not JSON", pos[0])
	}
	q := url.Values{}
	if *dryRun {
		q.Set("dry_run", "true")
	}
	if *force {
		q.Set("force", "true")
	}
	path := "/admin/schemas"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	raw, err := x.c.call(ctx, "POST", path,
		map[string]any{"category": *category, "name": *name, "schema": json.RawMessage(src)})
	if err != nil {
		return err
	}
	if *dryRun {
		return x.printCheck(raw)
	}
	return x.printSchemas(raw, true)
}

// printCheck prints a dry run's answer: how many of the type's recent
// stored events the schema would reject, with samples.
func (x *cli) printCheck(raw json.RawMessage) error {
	if x.json {
		return x.printJSON(raw)
	}
	var c struct {
		Checked, Failing int
		Samples          []struct {
			EventID string `json:"event_id"`
			Pointer string `json:"pointer"`
			Message string `json:"message"`
		}
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	fmt.Fprintf(x.out, "%d of the type's last %d stored events would fail this schema\n", c.Failing, c.Checked)
	tw := tabwriter.NewWriter(x.out, 0, 4, 2, ' ', 0)
	for _, f := range c.Samples {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.EventID, f.Pointer, f.Message)
	}
	return tw.Flush()
}

func (x *cli) schemasList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("schemas list", flag.ContinueOnError)
	category := fs.String("category", "", "only this category")
	name := fs.String("name", "", "only this name")
	if _, err := x.parse(fs, args, 0, ""); err != nil {
		return err
	}
	q := url.Values{"limit": {"1000"}}
	if *category != "" {
		q.Set("category", *category)
	}
	if *name != "" {
		q.Set("name", *name)
	}
	all, err := x.c.all(ctx, "/admin/schemas?"+q.Encode())
	if err != nil {
		return err
	}
	raw, err := json.Marshal(all)
	if err != nil {
		return fmt.Errorf("schemas list: %w", err)
	}
	return x.printSchemas(raw, false)
}

func (x *cli) schemasGet(ctx context.Context, args []string) error {
	pos, err := x.parse(flag.NewFlagSet("schemas get", flag.ContinueOnError), args, 3, "CATEGORY NAME VERSION")
	if err != nil {
		return err
	}
	raw, err := x.c.call(ctx, "GET", "/admin/schemas/"+url.PathEscape(pos[0])+"/"+url.PathEscape(pos[1])+"/"+url.PathEscape(pos[2]), nil)
	if err != nil {
		return err
	}
	if x.json {
		return x.printJSON(raw)
	}
	var s schemaRecord
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("schemas get: %w", err)
	}
	return x.printJSON(s.Schema)
}

// printSchemas prints one schema version (one) or a JSON array of them.
func (x *cli) printSchemas(raw json.RawMessage, one bool) error {
	if x.json {
		return x.printJSON(raw)
	}
	var recs []schemaRecord
	if one {
		var r schemaRecord
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode schema: %w", err)
		}
		recs = append(recs, r)
	} else if err := json.Unmarshal(raw, &recs); err != nil {
		return fmt.Errorf("decode schemas: %w", err)
	}
	tw := tabwriter.NewWriter(x.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CATEGORY\tNAME\tVERSION\tCREATED\tPUBLISHED")
	for _, r := range recs {
		published := "not yet (retried)"
		if r.PublishedAt != nil {
			published = r.PublishedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", strings.ReplaceAll(r.Category, "\t", " "), strings.ReplaceAll(r.Name, "\t", " "),
			r.Version, r.CreatedAt.Format(time.RFC3339), published)
	}
	return tw.Flush()
}
