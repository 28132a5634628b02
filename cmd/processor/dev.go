package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/prechat/prechat/examples"
	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/standins"
)

// devAssets is the demo page: a pre-chat form sending identify, group and
// the conversation start through analytics-next, the snippet, and a
// stand-in deployment.js whose "agent view" shows what Salesforce receives.
//
//go:embed dev
var devAssets embed.FS

// devWriteKey is the write key processor dev enables.
const devWriteKey = "dev-write-key"

// devIdentitySecret is processor dev's IDENTITY_SECRET: public, so that
// the demo page can show verified identities with no set-up. Never use it
// anywhere else: whoever knows it can pass as any user.
const devIdentitySecret = "dev-only-identity-secret-never-use-in-production"

// devDefaults are processor dev's defaults; the environment overrides them.
var devDefaults = []string{
	"HTTP_ADDR=127.0.0.1:8080",
	"ADMIN_ADDR=127.0.0.1:9090",
	"LOG_FORMAT=console",
	"WRITE_KEYS=" + devWriteKey,
	"IDENTITY_SECRET=" + devIdentitySecret,
	"DEPLOYMENT_SCRIPT_URL=/dev/deployment.js",
	"BATCH_TIMEOUT=10ms",
}

// devDir is where processor dev keeps its Postgres cluster and Kafka log
// between runs.
func devDir() string {
	if d := os.Getenv("PRECHAT_DEV_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/prechat-dev" // reachable by the postgres user
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "prechat-dev")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "prechat-dev")
}

// devCmd runs "processor dev": Kafka in-process, Postgres from DATABASE_URL
// or a private cluster, migrations, the example settings, ingest with a dev
// write key, and the demo page — everything on one machine.
func devCmd(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var dir string
	var kafkaPort int
	cfg, rest, err := loadConfig("dev", args, append(append([]string{}, devDefaults...), environ...), stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&dir, "data-dir", devDir(), "folder kept between runs for the private Postgres cluster and the Kafka log (PRECHAT_DEV_DIR)")
		fs.IntVar(&kafkaPort, "kafka-port", 9092, "port of the in-process Kafka broker (0: any free port; a busy 9092 falls back to any)")
	})
	if err != nil {
		return usageError{err}
	}
	if len(rest) > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " "))}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the data folder: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	// Busy default ports fall back to free ones, so the banner below is
	// exact and a second service on 8080 does not stop the demo.
	for _, addr := range []*string{&cfg.HTTPAddr, &cfg.AdminAddr} {
		if *addr, err = availableAddr(*addr); err != nil {
			return err
		}
	}
	log := newLogger(cfg, stderr)
	defer func() { _ = log.Sync() }()

	started := []string{}
	if cfg.DatabaseURL == "" {
		pg, url, err := startDevPostgres(ctx, dir, stderr)
		if err != nil {
			return err
		}
		defer pg.stop()
		cfg.DatabaseURL = url
		started = append(started, fmt.Sprintf("Postgres    %s (private cluster in %s)", url, filepath.Join(dir, "postgres")))
	} else {
		started = append(started, "Postgres    DATABASE_URL (yours)")
	}

	if len(cfg.KafkaBrokers) > 0 {
		log.Warn("processor dev runs its own Kafka broker; KAFKA_BROKERS is ignored")
	}
	if kafkaPort == 0 || (kafkaPort == 9092 && !portFree(kafkaPort)) {
		if kafkaPort, err = freePort(); err != nil {
			return err
		}
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(kafkaPort), kfake.SeedTopics(4, cfg.KafkaTopic),
		kfake.DataDir(filepath.Join(dir, "kafka")))
	if err != nil {
		return fmt.Errorf("start the in-process Kafka broker: %w", err)
	}
	defer cluster.Close()
	cfg.KafkaBrokers = cluster.ListenAddrs()
	started = append(started, fmt.Sprintf("Kafka       %s, topic %s (in-process kfake broker, log in %s)", strings.Join(cfg.KafkaBrokers, ","), cfg.KafkaTopic, filepath.Join(dir, "kafka")))

	if cfg.SettingsFile == "" {
		// The example, written once: edits made to it are kept.
		cfg.SettingsFile = filepath.Join(dir, "settings.json")
		if _, err := os.Stat(cfg.SettingsFile); errors.Is(err, fs.ErrNotExist) {
			if err := os.WriteFile(cfg.SettingsFile, examples.SettingsJSON, 0o644); err != nil {
				return fmt.Errorf("write the example settings: %w", err)
			}
		}
	}
	d, err := openDeps(ctx, cfg, needDB|needKafka|needSettings)
	if err != nil {
		return err
	}
	defer d.close()
	if err := d.store.Migrate(ctx); err != nil {
		return err
	}
	pages, err := fs.Sub(devAssets, "dev")
	if err != nil {
		return err
	}
	flushTraces, err := d.startTracing(ctx, environ, log)
	if err != nil {
		return err
	}
	defer flushTraces()
	roles, err := buildRoles(cfg, d, devPages(pages, cfg.signingSecret()), log)
	if err != nil {
		return usageError{err}
	}

	base := "http://" + cfg.HTTPAddr
	fmt.Fprintf(stdout, `
Prechat dev is running. Ctrl-C stops everything it started.

  Demo page   %s/
  API         %s/v1/prechat/{anonymousId}   snippet %s/v1/prechat.js
  Ingest      %s/v1/{t,i,g,b,...}   write key %q
  Identity    %s/dev/user-hash?userId=…   plays the site's server: the userHash under %s
  Admin       http://%s/metrics  /healthz  /readyz
  %s
  %s
  Settings    %s

`, base, base, base, base, devWriteKey, base, devSecretNote(cfg), cfg.AdminAddr, started[0], started[1], cfg.SettingsFile)
	err = runAll(ctx, cfg.ShutdownGrace, roles)
	log.Info("dev stopped", zap.Error(err))
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// availableAddr returns addr if its port can be listened on, else a free
// loopback port; ":8080" and "0.0.0.0:8080" become "127.0.0.1:8080"-style
// addresses a browser can open.
func availableAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	p, _ := strconv.Atoi(port)
	if p == 0 || !portFree(p) {
		if p, err = freePort(); err != nil {
			return "", err
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// lockDir takes an exclusive lock on the data folder, so two processor dev
// runs never share one Postgres cluster or Kafka log.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock the data folder: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another processor dev is using %s (choose another --data-dir)", dir)
	}
	return func() { f.Close() }, nil
}

// devSecretNote names the IDENTITY_SECRET that /dev/user-hash signs with.
func devSecretNote(cfg *Config) string {
	switch {
	case len(cfg.IdentitySecrets) == 0:
		return "no IDENTITY_SECRET (unset: nothing verifies)"
	case strings.TrimSpace(cfg.IdentitySecrets[0]) == devIdentitySecret:
		return "the dev-only IDENTITY_SECRET"
	default:
		return "your IDENTITY_SECRET"
	}
}

// devPages serves the demo page at / and its assets under /dev/, with the
// stand-ins of the three chat products that the browser tests use, and
// GET /dev/user-hash?userId=…, which plays the site's server: it answers
// {"userId": …, "userHash": …}, the userId's HMAC under secret (the first
// IDENTITY_SECRET), that the demo page passes with its identify and group.
// A real site's server signs only the userId of the user it has logged in;
// this one signs any, so it exists in processor dev alone. Without a
// secret it answers 503.
func devPages(pages fs.FS, secret []byte) http.Handler {
	files := http.FileServer(http.FS(pages))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dev/user-hash", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		userID := r.URL.Query().Get("userId")
		switch {
		case len(secret) == 0:
			http.Error(w, "no IDENTITY_SECRET is set: processor dev cannot sign userIds", http.StatusServiceUnavailable)
			return
		case userID == "":
			http.Error(w, "userId is required", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"userId": userID, "userHash": mapping.UserHash(secret, userID)})
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, pages, "index.html")
	})
	mux.Handle("GET /dev/", http.StripPrefix("/dev/", files))
	for _, name := range []string{"deployment.js", "esw.js", "bootstrap.js"} {
		mux.HandleFunc("GET /dev/"+name, func(w http.ResponseWriter, r *http.Request) {
			http.ServeFileFS(w, r, standins.FS, name)
		})
	}
	return mux
}
