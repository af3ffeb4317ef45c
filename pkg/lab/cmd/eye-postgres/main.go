// Command eye-postgres starts or stops a private Postgres cluster from the
// machine's PostgreSQL binaries (or a build fetched from Maven Central when
// it has none: see pkg/devstack/pgbin), as CI and scripts need one outside
// Go tests. `start` prints the DSN of database "eye" on stdout.
//
//	eye-postgres start -dir DIR [-port N]
//	eye-postgres stop -dir DIR
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/the-eye/eye/pkg/devstack"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "eye-postgres:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: eye-postgres start|stop -dir DIR [-port N] [-durable]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	dir := fs.String("dir", "", "cluster directory")
	port := fs.Int("port", 0, "TCP port (0: a free one)")
	durable := fs.Bool("durable", false, "fsync, synchronous_commit and full_page_writes on (the default is the fast test settings); applies when the cluster is created or started")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// StartPostgres reuses a cluster already running in dir, so stop is
	// "attach, then stop".
	p, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{Dir: *dir, Port: *port, Durable: *durable})
	if err != nil {
		return err
	}
	switch args[0] {
	case "start":
		fmt.Println(p.DSN("eye"))
		return nil
	case "stop":
		return p.StopAlways()
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
}
