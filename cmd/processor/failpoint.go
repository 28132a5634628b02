package main

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// failpointVar names the fault-injection switch of the crash tests, a comma
// separated list of NAME:P, each making the process SIGKILL itself with
// probability P at one point of every batch:
//
//	kill-in-transaction   inside the Postgres transaction, before COMMIT
//	kill-after-commit     after the Postgres commit, before the Kafka commit
//
// Never set it in production.
const failpointVar = "PRECHAT_FAILPOINT"

// failpoint returns the hook PRECHAT_FAILPOINT asks for at name, or nil.
func failpoint(name string) func() {
	for _, fp := range strings.Split(os.Getenv(failpointVar), ",") {
		n, ps, ok := strings.Cut(fp, ":")
		p, err := strconv.ParseFloat(ps, 64)
		if !ok || n != name || err != nil || p <= 0 {
			continue
		}
		return func() {
			if rand.Float64() < p {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	return nil
}
