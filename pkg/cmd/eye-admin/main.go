// Command eye-admin manages The Eye's applications, API keys and event
// schemas through query-api's admin endpoints. It needs a key with the
// admin scope, taken from EYE_ADMIN_KEY (or -key, which other local users
// may see in the process list); the API is at EYE_ADMIN_URL (or -url,
// default http://localhost:8081).
//
//	eye-admin apps create -name shop -origins https://shop.example -rate 50 -burst 100 -strict
//	eye-admin apps list
//	eye-admin keys create -app <app id> -scopes write -label checkout
//	eye-admin keys rotate -overlap 24h <key id>
//	eye-admin schemas add -category "page interaction" -name pageview pageview.json
//
// Output is a plain text table, or the API's JSON with -json.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "eye-admin:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}
