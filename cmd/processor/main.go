// Command processor is Prechat: it consumes Segment events from Kafka, keeps
// visitors' traits in Postgres and materialises the pre-chat documents that
// the browser snippet applies before liveagent.init.
//
// Usage:
//
//	processor dev                    everything on one machine, with a demo page
//	processor serve                  run the roles in ROLES (consumer, api)
//	processor migrate [up|status]    apply or show the schema migrations
//	processor settings check FILE    validate a settings file, print what it maps
//	processor replay ...             re-run the pipeline over a range of the log
//	processor forget ...             delete a person's data, suppress later events
//	processor deadletters list|requeue
//
// Configuration comes from the environment (see docs/configuration.md); every variable
// has a flag of the same name in lower case with dashes (--database-url).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `Prechat processor: Segment events from Kafka to Salesforce pre-chat documents.

Usage:
  processor dev                    everything on one machine: Kafka in-process, Postgres, demo page
  processor serve                  run the roles in ROLES (consumer, api)
  processor migrate [up|status]    apply pending schema migrations, or list them
  processor settings check FILE    validate a destination settings file and print what it maps
  processor replay --from earliest|TIME|P:O,... [--to P:O,...]
                                   re-run the pipeline over a range of the log
  processor replay --rebuild       rebuild the state into the empty database of DATABASE_URL
  processor forget --user-id ID | --anonymous-id ID [--lift]
                                   delete what is held about a person, suppress later events
  processor deadletters list [--limit N] [--pending]
  processor deadletters requeue ID... | --all-pending
                                   show dead letters, or produce them to the topic again

Configuration is read from the environment; each variable also has a flag
(DATABASE_URL is --database-url). Run "processor COMMAND -h" for the list.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// exitUsage is the exit code for a wrong command line or configuration.
const exitUsage = 2

// run executes one command and returns the process exit code.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, rest, environ, stdout, stderr)
	case "migrate":
		err = migrateCmd(ctx, rest, environ, stdout, stderr)
	case "settings":
		err = settingsCmd(rest, stdout, stderr)
	case "dev":
		err = devCmd(ctx, rest, environ, stdout, stderr)
	case "replay":
		err = replayCmd(ctx, rest, environ, stdout, stderr)
	case "forget":
		err = forgetCmd(ctx, rest, environ, stdout, stderr)
	case "deadletters":
		err = deadLettersCmd(ctx, rest, environ, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "processor: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "processor %s: %v\n", cmd, err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "processor %s: %v\n", cmd, err)
		return 1
	}
}

// usageError is a wrong command line or configuration (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }
