package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const usage = `usage: eye-admin [-url URL] [-key KEY] [-json] <command>

  apps create -name NAME [-origins a,b] [-rate R] [-burst B] [-strict] [-strict-types]
  apps list
  apps get ID
  apps update [-name NAME] [-origins a,b] [-rate R] [-burst B] [-strict=true|false] [-strict-types=true|false] ID
  apps disable ID
  apps enable ID
  keys create -app ID -scopes write|read|read,admin [-label L]
  keys list -app ID
  keys rotate [-overlap 24h] KEYID
  keys revoke KEYID
  schemas add -category C -name N [-dry-run] [-force] FILE
                                       (FILE: a JSON Schema for the data of C/N events; - for stdin;
                                       checked against the type's recent events first, see docs/schemas.md)
  schemas list [-category C] [-name N]
  schemas get CATEGORY NAME VERSION

environment: EYE_ADMIN_URL (default http://localhost:8081), EYE_ADMIN_KEY (a key with the admin scope)
`

// errUsage marks a command line that cannot be understood.
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errUsage)
}

// cli is one invocation: where to talk to and how to print.
type cli struct {
	c    *client
	out  io.Writer
	json bool
}

// run executes the command line args (without the program name), writing
// its output to stdout.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("eye-admin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	base := fs.String("url", envOr("EYE_ADMIN_URL", "http://localhost:8081"), "query-api base URL (EYE_ADMIN_URL)")
	key := fs.String("key", os.Getenv("EYE_ADMIN_KEY"), "admin key (EYE_ADMIN_KEY; prefer the variable)")
	x := &cli{out: stdout}
	fs.BoolVar(&x.json, "json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return err
		}
		return usageErr("%v", err)
	}
	rest := fs.Args()
	if len(rest) < 2 {
		return usageErr("a command is needed")
	}
	cmd := map[string]func(context.Context, []string) error{
		"apps create": x.appsCreate, "apps list": x.appsList, "apps get": x.appsGet, "apps update": x.appsUpdate,
		"apps disable": x.appsState("disable"), "apps enable": x.appsState("enable"),
		"keys create": x.keysCreate, "keys list": x.keysList, "keys rotate": x.keysRotate, "keys revoke": x.keysRevoke,
		"schemas add": x.schemasAdd, "schemas list": x.schemasList, "schemas get": x.schemasGet,
	}[rest[0]+" "+rest[1]]
	if cmd == nil {
		return usageErr("unknown command %q", strings.Join(rest[:2], " "))
	}
	if *key == "" {
		return errors.New("no admin key: set EYE_ADMIN_KEY")
	}
	if u, err := url.Parse(*base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("bad API URL %q: want http(s)://host[:port]", *base)
	}
	x.c = newClient(*base, *key)
	return cmd(ctx, rest[2:])
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// parse parses a subcommand's flags, which may come before or after its
// positional arguments, and returns exactly want positional arguments.
func (x *cli) parse(fs *flag.FlagSet, args []string, want int, names string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.BoolVar(&x.json, "json", x.json, "print JSON")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageErr("%s: %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != want {
		return nil, usageErr("%s: want %d argument(s) %s, got %d", fs.Name(), want, names, len(pos))
	}
	return pos, nil
}

// settingsFlags are the flags that set an application's settings.
type settingsFlags struct {
	name, origins string
	rate          float64
	burst         int
	strict        bool
	strictTypes   bool
}

func (s *settingsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.name, "name", "", "application name")
	fs.StringVar(&s.origins, "origins", "", `allowed browser origins, comma-separated ("*" or scheme://host[:port])`)
	fs.Float64Var(&s.rate, "rate", 0, "events per second per key (0: the gateway's default)")
	fs.IntVar(&s.burst, "burst", 0, "rate burst (0: the gateway's default)")
	fs.BoolVar(&s.strict, "strict", false, "refuse events of unregistered sessions")
	fs.BoolVar(&s.strictTypes, "strict-types", false, "refuse events of types without a JSON Schema")
}

func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (x *cli) appsCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("apps create", flag.ContinueOnError)
	var s settingsFlags
	s.register(fs)
	if _, err := x.parse(fs, args, 0, ""); err != nil {
		return err
	}
	if strings.TrimSpace(s.name) == "" {
		return usageErr("apps create: -name is required")
	}
	body := map[string]any{"name": s.name, "allowed_origins": splitList(s.origins),
		"rate_limit": s.rate, "rate_burst": s.burst, "strict_sessions": s.strict, "strict_types": s.strictTypes}
	raw, err := x.c.call(ctx, "POST", "/admin/applications", body)
	if err != nil {
		return err
	}
	return x.printApps(raw, true)
}

func (x *cli) appsUpdate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("apps update", flag.ContinueOnError)
	var s settingsFlags
	s.register(fs)
	pos, err := x.parse(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	body := map[string]any{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "name":
			body["name"] = s.name
		case "origins":
			body["allowed_origins"] = splitList(s.origins)
		case "rate":
			body["rate_limit"] = s.rate
		case "burst":
			body["rate_burst"] = s.burst
		case "strict":
			body["strict_sessions"] = s.strict
		case "strict-types":
			body["strict_types"] = s.strictTypes
		}
	})
	if len(body) == 0 {
		return usageErr("apps update: nothing to change")
	}
	raw, err := x.c.call(ctx, "PATCH", "/admin/applications/"+url.PathEscape(pos[0]), body)
	if err != nil {
		return err
	}
	return x.printApps(raw, true)
}

func (x *cli) appsList(ctx context.Context, args []string) error {
	if _, err := x.parse(flag.NewFlagSet("apps list", flag.ContinueOnError), args, 0, ""); err != nil {
		return err
	}
	all, err := x.c.all(ctx, "/admin/applications?limit=1000")
	if err != nil {
		return err
	}
	raw, err := json.Marshal(all)
	if err != nil {
		return fmt.Errorf("apps list: %w", err)
	}
	return x.printApps(raw, false)
}

func (x *cli) appsGet(ctx context.Context, args []string) error {
	pos, err := x.parse(flag.NewFlagSet("apps get", flag.ContinueOnError), args, 1, "ID")
	if err != nil {
		return err
	}
	raw, err := x.c.call(ctx, "GET", "/admin/applications/"+url.PathEscape(pos[0]), nil)
	if err != nil {
		return err
	}
	return x.printApps(raw, true)
}

// appsState returns the command that posts to an application's action
// (disable, enable).
func (x *cli) appsState(action string) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		pos, err := x.parse(flag.NewFlagSet("apps "+action, flag.ContinueOnError), args, 1, "ID")
		if err != nil {
			return err
		}
		raw, err := x.c.call(ctx, "POST", "/admin/applications/"+url.PathEscape(pos[0])+"/"+action, nil)
		if err != nil {
			return err
		}
		return x.printApps(raw, true)
	}
}

func (x *cli) keysCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	app := fs.String("app", "", "application id")
	scopes := fs.String("scopes", "", "write, read, or read,admin")
	label := fs.String("label", "", "what the key is for")
	if _, err := x.parse(fs, args, 0, ""); err != nil {
		return err
	}
	if *app == "" || *scopes == "" {
		return usageErr("keys create: -app and -scopes are required")
	}
	raw, err := x.c.call(ctx, "POST", "/admin/applications/"+url.PathEscape(*app)+"/keys",
		map[string]any{"scopes": splitList(*scopes), "label": *label})
	if err != nil {
		return err
	}
	return x.printNewKey(raw)
}

func (x *cli) keysList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("keys list", flag.ContinueOnError)
	app := fs.String("app", "", "application id")
	if _, err := x.parse(fs, args, 0, ""); err != nil {
		return err
	}
	if *app == "" {
		return usageErr("keys list: -app is required")
	}
	raw, err := x.c.call(ctx, "GET", "/admin/applications/"+url.PathEscape(*app)+"/keys", nil)
	if err != nil {
		return err
	}
	var page list[json.RawMessage]
	if err := json.Unmarshal(raw, &page); err != nil {
		return fmt.Errorf("keys list: %w", err)
	}
	if x.json {
		return x.printJSON(page.Results)
	}
	var keys []key
	for _, r := range page.Results {
		var k key
		if err := json.Unmarshal(r, &k); err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		keys = append(keys, k)
	}
	tw := tabwriter.NewWriter(x.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPREFIX\tSCOPES\tLABEL\tSTATUS\tCREATED")
	now := time.Now()
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, strings.Join(k.Scopes, ","), orDash(k.Label),
			keyStatus(k, now), k.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func (x *cli) keysRotate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	overlap := fs.String("overlap", "", "how long the old key keeps working (default: the server's, 24h)")
	pos, err := x.parse(fs, args, 1, "KEYID")
	if err != nil {
		return err
	}
	var body any
	if *overlap != "" {
		body = map[string]string{"overlap": *overlap}
	}
	raw, err := x.c.call(ctx, "POST", "/admin/keys/"+url.PathEscape(pos[0])+"/rotate", body)
	if err != nil {
		return err
	}
	return x.printNewKey(raw)
}

func (x *cli) keysRevoke(ctx context.Context, args []string) error {
	pos, err := x.parse(flag.NewFlagSet("keys revoke", flag.ContinueOnError), args, 1, "KEYID")
	if err != nil {
		return err
	}
	raw, err := x.c.call(ctx, "POST", "/admin/keys/"+url.PathEscape(pos[0])+"/revoke", nil)
	if err != nil {
		return err
	}
	if x.json {
		return x.printJSON(raw)
	}
	var k key
	if err := json.Unmarshal(raw, &k); err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	_, err = fmt.Fprintf(x.out, "revoked %s (%s); services stop accepting it within their key cache TTL (5s by default)\n", k.ID, k.Prefix)
	return err
}

// printApps prints one application (one) or a JSON array of them.
func (x *cli) printApps(raw json.RawMessage, one bool) error {
	if x.json {
		return x.printJSON(raw)
	}
	var apps []application
	if one {
		var a application
		if err := json.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("decode application: %w", err)
		}
		apps = append(apps, a)
	} else if err := json.Unmarshal(raw, &apps); err != nil {
		return fmt.Errorf("decode applications: %w", err)
	}
	tw := tabwriter.NewWriter(x.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tORIGINS\tRATE\tBURST\tSTRICT\tCREATED")
	for _, a := range apps {
		status := "enabled"
		if a.DisabledAt != nil {
			status = "disabled"
		}
		rate, burst := "default", "default"
		if a.Settings.RateLimit > 0 {
			rate = strconv.FormatFloat(a.Settings.RateLimit, 'g', -1, 64)
		}
		if a.Settings.RateBurst > 0 {
			burst = strconv.Itoa(a.Settings.RateBurst)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%t\t%s\n", a.ID, a.Name, status,
			orDash(strings.Join(a.Settings.AllowedOrigins, ",")), rate, burst, a.Settings.StrictSessions, a.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

// printNewKey prints a key just created or rotated, with its material.
func (x *cli) printNewKey(raw json.RawMessage) error {
	if x.json {
		return x.printJSON(raw)
	}
	var k key
	if err := json.Unmarshal(raw, &k); err != nil {
		return fmt.Errorf("decode key: %w", err)
	}
	tw := tabwriter.NewWriter(x.out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\n", k.ID)
	fmt.Fprintf(tw, "application\t%s\n", k.ApplicationID)
	fmt.Fprintf(tw, "key\t%s\n", k.Secret)
	fmt.Fprintf(tw, "prefix\t%s\n", k.Prefix)
	fmt.Fprintf(tw, "scopes\t%s\n", strings.Join(k.Scopes, ","))
	fmt.Fprintf(tw, "label\t%s\n", orDash(k.Label))
	if p := k.Previous; p != nil && p.ExpiresAt != nil {
		fmt.Fprintf(tw, "replaces\t%s (%s), which keeps working until %s\n", p.ID, p.Prefix, p.ExpiresAt.Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(x.out, "The key is shown only this once: store it now.")
	return err
}

func (x *cli) printJSON(v any) error {
	var raw []byte
	switch r := v.(type) {
	case json.RawMessage:
		raw = r
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		raw = b
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("indent: %w", err)
	}
	buf.WriteByte('\n')
	_, err := x.out.Write(buf.Bytes())
	return err
}

func keyStatus(k key, now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return "revoked " + k.RevokedAt.Format(time.RFC3339)
	case k.ExpiresAt != nil && !k.ExpiresAt.After(now):
		return "expired " + k.ExpiresAt.Format(time.RFC3339)
	case k.ExpiresAt != nil:
		return "expires " + k.ExpiresAt.Format(time.RFC3339)
	}
	return "active"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
