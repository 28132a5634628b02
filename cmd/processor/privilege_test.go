package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence/persistencetest"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// apiRoleSection is the section of docs/deploy.md whose first SQL block
// creates the api pods' Postgres role.
const apiRoleSection = "## Least privilege: a Postgres role for the api pods\n"

// apiRoleSQL returns the statements of docs/deploy.md's api role block, with
// the role and the database renamed for this test, and the role's password.
func apiRoleSQL(t *testing.T, role, database string) (stmts []string, password string) {
	t.Helper()
	readme, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), apiRoleSection)
	if !ok {
		t.Fatalf("docs/deploy.md has no %q", strings.TrimSpace(apiRoleSection))
	}
	_, block, ok := strings.Cut(section, "```sql\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok || strings.Contains(section[:strings.Index(section, block)], "\n#") {
		t.Fatal("docs/deploy.md's least-privilege section has no SQL block of its own")
	}
	m := regexp.MustCompile(`PASSWORD '([^']*)'`).FindStringSubmatch(block)
	if m == nil {
		t.Fatalf("docs/deploy.md's api role has no password:\n%s", block)
	}
	if strings.Count(block, "ON DATABASE prechat ") != 1 {
		t.Fatalf("docs/deploy.md's api role block does not grant CONNECT on database prechat once:\n%s", block)
	}
	block = strings.Replace(block, "ON DATABASE prechat ", "ON DATABASE "+pgx.Identifier{database}.Sanitize()+" ", 1)
	for _, s := range strings.Split(block, ";\n") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.Contains(s, "prechat_api") {
			t.Fatalf("docs/deploy.md statement does not name the role prechat_api: %s", s)
		}
		stmts = append(stmts, strings.ReplaceAll(s, "prechat_api", role))
	}
	return stmts, m[1]
}

// roleURL is the connection string of role on the database of url.
func roleURL(t *testing.T, url, role, password string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	q := func(v string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'" }
	return fmt.Sprintf("host=%s port=%d dbname=%s user=%s password=%s sslmode=disable", q(cfg.Host), cfg.Port, q(cfg.Database), q(role), q(password))
}

// TestAPIRoleLeastPrivilege creates the api pods' role with docs/deploy.md's
// own SQL and runs "processor serve" with ROLES=api as that role beside a
// consumer that runs as the owner: the api is ready, serves the documents
// the owner writes, wakes long-polls on their notifications and answers
// after=, while the role can neither write to nor delete from any table,
// take a sequence value, read the tables it does not serve, nor create
// anything. With the SELECT grants not yet made, the api refuses to start.
func TestAPIRoleLeastPrivilege(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	role := "prechat_api_" + hex.EncodeToString(suffix)
	// Registered before the database, so it runs after the database is dropped.
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), persistencetest.AdminURL())
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	topic := pipelinetest.Name(t, "topic")
	brokers := pipelinetest.NewCluster(t, 2, topic)
	store, ownerURL := persistencetest.NewStore(t, nil)
	owner, err := pgx.Connect(ctx, ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(context.Background())
	stmts, password := apiRoleSQL(t, role, owner.Config().Database)
	apiURL := roleURL(t, ownerURL, role, password)

	env := []string{"KAFKA_BROKERS=" + strings.Join(brokers, ","), "KAFKA_TOPIC=" + topic,
		"KAFKA_GROUP=" + pipelinetest.Name(t, "group"), "SETTINGS_FILE=" + writeSettings(t, mappingtest.SettingsJSON),
		"ADMIN_ADDR=127.0.0.1:0", "IDENTITY_SECRET=" + mappingtest.IdentitySecret}
	apiEnv := append(slices.Clone(env), "DATABASE_URL="+apiURL, "ROLES=api", "HTTP_ADDR=127.0.0.1:0", "WRITE_KEYS=wk-1")

	// The role alone, without its SELECT grants: the api stops at its schema check.
	var selects []string
	for _, s := range stmts {
		if strings.HasPrefix(s, "GRANT SELECT") {
			selects = append(selects, s)
			continue
		}
		if _, err := owner.Exec(ctx, s); err != nil {
			t.Fatalf("docs/deploy.md statement fails: %v\n%s", err, s)
		}
	}
	if len(selects) == 0 || len(selects) == len(stmts) {
		t.Fatalf("the docs/deploy.md block should create the role, then grant SELECT: %q", stmts)
	}
	early := startProcessor(t, apiEnv, "serve")
	select {
	case <-early.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the api without its grants did not stop; log:\n%s", early.stderr.String())
	}
	if early.err == nil || !strings.Contains(early.stderr.String(), "permission denied for table prechat_schema_version") {
		t.Fatalf("the api without its grants: exit %v, want a permission error naming the version table; log:\n%s", early.err, early.stderr.String())
	}
	for _, s := range selects {
		if _, err := owner.Exec(ctx, s); err != nil {
			t.Fatalf("docs/deploy.md statement fails: %v\n%s", err, s)
		}
	}

	consumer := startProcessor(t, append(slices.Clone(env), "DATABASE_URL="+ownerURL, "ROLES=consumer"), "serve")
	api := startProcessor(t, apiEnv, "serve")
	base := "http://" + api.logAddr(t, "http listening", 20*time.Second)
	admin := "http://" + api.logAddr(t, "admin listening", 20*time.Second)
	eventually(t, 20*time.Second, "api ready as "+role, func() bool {
		code, body := get(admin + "/readyz")
		return code == http.StatusOK && strings.Contains(body, `"postgres":"ok"`) && strings.Contains(body, `"schema":"ok"`)
	})

	// fetch GETs a document with the conversation's secret.
	fetch := func(path, secret string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("X-Prechat-Token", secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return res.StatusCode, body, err
	}
	conversation := func(anon, msg, secret string) string {
		sum := sha256.Sum256([]byte(secret))
		return `{"type":"track","messageId":"` + msg + `","anonymousId":"` + anon + `","event":"Live Chat Conversation Started","properties":{"subject":"Socks for ` + anon + `"},"context":{"prechat":{"tokenHash":"` + hex.EncodeToString(sum[:]) + `"}},"timestamp":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`
	}

	// Long-polls are woken by the owner's NOTIFY through the role's LISTEN,
	// not by their 2 s re-check: each answers within 500 ms of the commit.
	for i := range 3 {
		anon, secret := fmt.Sprintf("visitor-%d", i), fmt.Sprintf("secret-%d-0123456789abcdef0123456789", i)
		type answer struct {
			code int
			body []byte
			err  error
			at   time.Time
		}
		answered := make(chan answer, 1)
		go func() {
			code, body, err := fetch("/v1/prechat/"+anon+"?wait=20", secret)
			answered <- answer{code, body, err, time.Now()}
		}()
		eventually(t, 10*time.Second, "long-poll waiting", func() bool {
			_, body := get(admin + "/metrics")
			return strings.Contains(body, "\nprechat_waiters 1\n")
		})
		pipelinetest.Produce(t, brokers, topic,
			[]byte(`{"type":"identify","messageId":"i`+anon+`","anonymousId":"`+anon+`","traits":{"email":"`+anon+`@example.com"},"timestamp":"`+time.Now().UTC().Format(time.RFC3339Nano)+`"}`),
			[]byte(conversation(anon, "c"+anon, secret)))
		var committed time.Time
		for committed.IsZero() {
			if _, _, err := store.DocumentGet(ctx, anon); err == nil {
				committed = time.Now()
			} else if ctx.Err() != nil {
				t.Fatalf("no document for %s; consumer log:\n%s", anon, consumer.stderr.String())
			}
			time.Sleep(2 * time.Millisecond)
		}
		a := <-answered
		if a.err != nil || a.code != http.StatusOK || !hasDetail(a.body, "Subject", "Socks for "+anon) || !hasDetail(a.body, "User Email", anon+"@example.com") {
			t.Fatalf("long-poll for %s: %d %s %v; api log:\n%s", anon, a.code, a.body, a.err, api.stderr.String())
		}
		woke := a.at.Sub(committed)
		t.Logf("%s: answered %v after the commit was seen", anon, woke.Round(time.Millisecond))
		if woke > 500*time.Millisecond {
			t.Errorf("long-poll for %s answered %v after the commit: not woken by its notification", anon, woke)
		}
	}

	// after=: the ingest (Kafka only) and the applied-messages check.
	res, err := http.Post(base+"/v1/t", "text/plain", strings.NewReader(`{"writeKey":"wk-1",`+strings.TrimPrefix(conversation("visitor-9", "c9", "secret-9-0123456789abcdef0123456789"), "{")))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %d", res.StatusCode)
	}
	code, body, err := fetch("/v1/prechat/visitor-9?wait=20&after=c9", "secret-9-0123456789abcdef0123456789")
	if err != nil || code != http.StatusOK || !hasDetail(body, "Subject", "Socks for visitor-9") {
		t.Fatalf("after=c9: %d %s %v; api log:\n%s", code, body, err, api.stderr.String())
	}

	checkRoleCannotWrite(t, ctx, owner, apiURL, role)
	if log := api.stderr.String(); strings.Contains(log, "permission denied") {
		t.Errorf("the api as %s met a permission error:\n%s", role, log)
	}
}

// checkRoleCannotWrite tries, as the role, every write on every table and
// sequence of the schema, reads of what the api does not serve, and
// creating objects: each must fail with insufficient_privilege.
func checkRoleCannotWrite(t *testing.T, ctx context.Context, owner *pgx.Conn, url, role string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	defer conn.Close(context.Background())
	rows, err := owner.Query(ctx, `
SELECT c.relname, c.relkind::text, coalesce((SELECT a.attname FROM pg_attribute a
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = '' AND a.attgenerated = ''
    ORDER BY a.attnum LIMIT 1), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
ORDER BY c.relname`)
	if err != nil {
		t.Fatal(err)
	}
	type relation struct{ Name, Kind, Column string }
	rels, err := pgx.CollectRows(rows, pgx.RowToStructByPos[relation])
	if err != nil {
		t.Fatal(err)
	}
	denied := func(what, sql string, args ...any) {
		t.Helper()
		_, err := conn.Exec(ctx, sql, args...)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s as %s: %v, want insufficient_privilege (42501)\n%s", what, role, err, sql)
		}
	}
	readable := map[string]bool{"prechat_documents": true, "prechat_schema_version": true}
	var tables, sequences []string
	for _, r := range rels {
		id := pgx.Identifier{r.Name}.Sanitize()
		switch r.Kind {
		case "r", "p":
			tables = append(tables, r.Name)
			denied("insert into "+r.Name, "INSERT INTO "+id+" DEFAULT VALUES")
			denied("update "+r.Name, "UPDATE "+id+" SET "+pgx.Identifier{r.Column}.Sanitize()+" = "+pgx.Identifier{r.Column}.Sanitize())
			denied("delete from "+r.Name, "DELETE FROM "+id)
			denied("truncate "+r.Name, "TRUNCATE "+id)
			if !readable[r.Name] {
				denied("read "+r.Name, "SELECT * FROM "+id+" LIMIT 1")
			}
		case "v", "m":
			denied("read "+r.Name, "SELECT * FROM "+id+" LIMIT 1")
		case "S":
			sequences = append(sequences, r.Name)
			denied("nextval of "+r.Name, "SELECT nextval($1::regclass)", r.Name)
			denied("setval of "+r.Name, "SELECT setval($1::regclass, 1000)", r.Name)
		}
	}
	for _, want := range []string{"traits", "identity_links", "group_memberships", "conversations", "prechat_documents", "applied_messages", "dead_letters", "kafka_offsets", "suppressions", "prechat_schema_version", "document_refreshes"} {
		if !slices.Contains(tables, want) {
			t.Errorf("table %s not found among %v: the check no longer covers it", want, tables)
		}
	}
	if len(sequences) == 0 {
		t.Errorf("no sequence found (dead_letters.id has one): the check no longer covers them")
	}
	denied("read applied_messages' user ids", "SELECT user_id, anonymous_id FROM applied_messages LIMIT 1")
	denied("create a table", "CREATE TABLE prechat_api_was_here (x int)")
	denied("create a schema", "CREATE SCHEMA prechat_api_was_here")
	denied("create a function", "CREATE FUNCTION prechat_api_was_here() RETURNS int LANGUAGE sql AS 'SELECT 1'")
	if !t.Failed() {
		t.Logf("%s: every write denied on %d tables and %d sequences", role, len(tables), len(sequences))
	}
}
