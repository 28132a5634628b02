package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// errNoPostgres explains how to give processor dev a Postgres.
var errNoPostgres = errors.New("processor dev needs PostgreSQL: set DATABASE_URL, or install the server binaries " +
	"(Debian/Ubuntu: apt-get install postgresql) so that initdb and pg_ctl are found on PATH or under /usr/lib/postgresql/*/bin")

// pgBinary finds a PostgreSQL server program on PATH or in the usual
// library folders, newest version first.
func pgBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var found []string
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin/" + name, "/usr/pgsql-*/bin/" + name, "/usr/local/pgsql/bin/" + name, "/opt/homebrew/opt/postgresql*/bin/" + name, "/usr/local/opt/postgresql*/bin/" + name} {
		m, _ := filepath.Glob(pattern)
		found = append(found, m...)
	}
	if len(found) == 0 {
		return "", errNoPostgres
	}
	sort.Slice(found, func(i, j int) bool { return versionOf(found[i]) > versionOf(found[j]) })
	return found[0], nil
}

func versionOf(path string) int {
	for _, part := range strings.Split(path, "/") {
		digits := strings.TrimLeftFunc(part, func(r rune) bool { return r < '0' || r > '9' })
		if n, err := strconv.Atoi(digits); err == nil {
			return n
		}
	}
	return 0
}

// devPostgres is a private Postgres cluster in a data folder kept between
// runs.
type devPostgres struct {
	dir    string
	pgCtl  string
	cred   *syscall.Credential
	port   int
	stderr io.Writer
}

// startDevPostgres initialises (first run) and starts a cluster in dir,
// listening on loopback only, and returns it with the URL of its prechat
// database. Running as root, the server runs as the postgres user (initdb
// refuses root).
func startDevPostgres(ctx context.Context, dir string, stderr io.Writer) (*devPostgres, string, error) {
	initdb, err := pgBinary("initdb")
	if err != nil {
		return nil, "", err
	}
	pgCtl, err := pgBinary("pg_ctl")
	if err != nil {
		return nil, "", err
	}
	pg := &devPostgres{dir: filepath.Join(dir, "postgres"), pgCtl: pgCtl, stderr: stderr}
	if err := os.MkdirAll(pg.dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("create %s: %w", pg.dir, err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, "", fmt.Errorf("running as root, processor dev runs Postgres as the postgres user, which does not exist: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := chownTree(pg.dir, uid, gid); err != nil {
			return nil, "", err
		}
	}
	if _, err := os.Stat(filepath.Join(pg.dir, "data", "PG_VERSION")); err != nil {
		if err := pg.run(initdb, "-D", filepath.Join(pg.dir, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"); err != nil {
			if pg.cred != nil {
				err = fmt.Errorf("%w (as root, the cluster runs as the postgres user, which must be able to enter every folder of %s)", err, pg.dir)
			}
			return nil, "", fmt.Errorf("initdb: %w", err)
		}
	}
	// A cluster left running by an earlier run that did not stop cleanly.
	_ = pg.run(pgCtl, "-D", filepath.Join(pg.dir, "data"), "-m", "immediate", "-w", "stop")
	if pg.port, err = freePort(); err != nil {
		return nil, "", err
	}
	if err := pg.start(); err != nil {
		return nil, "", err
	}
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		pg.stop()
		return nil, "", fmt.Errorf("connect to the dev cluster: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'prechat')`).Scan(&exists)
	if err == nil && !exists {
		_, err = conn.Exec(ctx, `CREATE DATABASE prechat`)
	}
	if err != nil {
		pg.stop()
		return nil, "", fmt.Errorf("create the prechat database: %w", err)
	}
	return pg, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/prechat?sslmode=disable", pg.port), nil
}

// start starts the (stopped) cluster on its port.
func (pg *devPostgres) start() error {
	// TCP on loopback only: no Unix socket, whose path length is limited.
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", pg.port)
	if err := pg.run(pg.pgCtl, "-D", filepath.Join(pg.dir, "data"), "-l", filepath.Join(pg.dir, "server.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		return fmt.Errorf("pg_ctl start (see %s): %w", filepath.Join(pg.dir, "server.log"), err)
	}
	return nil
}

// stop shuts the cluster down (fast: sessions are ended, nothing is lost).
func (pg *devPostgres) stop() {
	_ = pg.run(pg.pgCtl, "-D", filepath.Join(pg.dir, "data"), "-m", "fast", "-w", "stop")
}

func (pg *devPostgres) run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = pg.dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// freePort returns an unused loopback port below the kernel's ephemeral
// range (net.ipv4.ip_local_port_range), chosen at random. The port is
// released before the server that needs it (Postgres, the broker) takes it,
// and again whenever that server restarts on it; the kernel hands ports of
// the ephemeral range to every outgoing connection and every listener on
// port 0, so one of those could take a released port, while a port below
// the range can only be taken by a program that names it. Where the range
// is unknown, or leaves no room below it, the kernel picks any free port.
func freePort() (int, error) {
	const lowest = 10000
	if first := ephemeralPortsStart(); first > lowest+1000 {
		for range 100 {
			if p := lowest + rand.IntN(first-lowest); portFree(p) {
				return p, nil
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralPortsStart is the first port of the kernel's ephemeral range, 0
// when it is unknown (not Linux).
func ephemeralPortsStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0
	}
	first, _ := strconv.Atoi(fields[0])
	return first
}

// portFree reports whether a loopback port can be listened on.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
