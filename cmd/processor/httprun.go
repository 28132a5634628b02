package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// runHTTP is the listen, serve and shutdown of both HTTP servers (the api
// role's public port and the admin port). It listens on addr (the value of
// the variable addrVar, named in errors), logs "<name> listening" with the
// real address (the tests and processor dev read it), serves until ctx ends,
// then calls drain, if any, and shuts srv down, giving requests in flight up
// to grace to finish.
func runHTTP(ctx context.Context, srv *http.Server, name, addrVar, addr string, grace time.Duration, drain func(), log *zap.Logger, fields ...zap.Field) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", addrVar, err)
	}
	log.Info(name+" listening", append([]zap.Field{zap.String("addr", ln.Addr().String())}, fields...)...)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("%s server: %w", name, err)
	case <-ctx.Done():
	}
	if drain != nil {
		drain()
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("%s shutdown: %w", name, err)
	}
	return nil
}
