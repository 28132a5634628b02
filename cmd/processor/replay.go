package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/prechat/prechat/pipeline"
)

// replayCmd runs "processor replay --from … [--to …] [--rebuild]".
func replayCmd(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var fromFlag, toFlag string
	var rebuild bool
	cfg, rest, err := loadConfig("replay", args, environ, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&fromFlag, "from", "", "where to start: earliest, an RFC 3339 time, or partition:offset,…")
		fs.StringVar(&toFlag, "to", "", "where to stop (exclusive): partition:offset,… (default: the end of the log when the replay starts)")
		fs.BoolVar(&rebuild, "rebuild", false, "rebuild into the empty database of DATABASE_URL, from earliest, recording the consumer group's offsets")
	})
	if err != nil {
		return usageError{err}
	}
	if len(rest) > 0 || (fromFlag == "" && !rebuild) {
		return usageError{errors.New("usage: processor replay --from earliest|<RFC3339 time>|<partition:offset,…> [--to <partition:offset,…>] | processor replay --rebuild")}
	}
	if rebuild {
		if fromFlag != "" && fromFlag != "earliest" {
			return usageError{errors.New("--rebuild always starts from earliest")}
		}
		fromFlag = "earliest"
	}
	from, err := parseFrom(fromFlag)
	if err != nil {
		return usageError{fmt.Errorf("--from: %w", err)}
	}
	var to map[int]int64
	if toFlag != "" {
		if to, err = parseOffsets(toFlag); err != nil {
			return usageError{fmt.Errorf("--to: %w", err)}
		}
	}
	d, err := openDeps(ctx, cfg, needDB|needKafka|needSettings)
	if err != nil {
		return err
	}
	defer d.close()
	store := d.store
	log := newLogger(cfg, stderr)
	if err := checkSchema(ctx, store); err != nil {
		return err
	}
	if rebuild {
		empty, err := store.Empty(ctx)
		if err != nil {
			return err
		}
		if !empty {
			return errors.New("--rebuild writes into an empty database: DATABASE_URL already holds state (create a new database and run processor migrate on it)")
		}
	}
	progress := newProgress(stdout)
	pc := cfg.pipelineConfig(d)
	pc.Logger = log.Named("replay")
	pc.OnBatch = func(b pipeline.BatchInfo) { progress.add(int64(b.Messages)) }
	rng, err := pipeline.Replay(ctx, pc, store, pipeline.ReplayOptions{From: from, To: to, RecordPositions: rebuild, OnStart: func(r pipeline.Range) { progress.start(r.Messages()) }})
	progress.finish()
	if err != nil {
		return err
	}
	log.Info("replay done", zap.Int64("messages", rng.Messages()), zap.Any("end", rng.End))
	fmt.Fprintf(stdout, "replayed %d messages of %s (partition:end %s)\n", rng.Messages(), cfg.KafkaTopic, formatOffsets(rng.End))
	if rebuild {
		fmt.Fprintf(stdout, "rebuilt; consumer group %s continues from these offsets once the service uses this database\n", cfg.KafkaGroup)
	}
	return nil
}

func parseFrom(s string) (pipeline.From, error) {
	if s == "earliest" {
		return pipeline.From{Earliest: true}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return pipeline.From{Time: t}, nil
	}
	offs, err := parseOffsets(s)
	if err != nil {
		return pipeline.From{}, fmt.Errorf("%q is not earliest, an RFC 3339 time or partition:offset,…", s)
	}
	return pipeline.From{Offsets: offs}, nil
}

func parseOffsets(s string) (map[int]int64, error) {
	out := map[int]int64{}
	for _, part := range strings.Split(s, ",") {
		p, o, ok := strings.Cut(strings.TrimSpace(part), ":")
		pi, err1 := strconv.Atoi(p)
		oi, err2 := strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil || pi < 0 || oi < 0 {
			return nil, fmt.Errorf("%q is not partition:offset", part)
		}
		out[pi] = oi
	}
	return out, nil
}

func formatOffsets(m map[int]int64) string {
	parts := make([]string, 0, len(m))
	for _, p := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d:%d", p, m[p]))
	}
	return strings.Join(parts, ",")
}

// progress reports a replay: a bar redrawn in place on a terminal, a plain
// line every few seconds otherwise.
type progress struct {
	w        io.Writer
	terminal bool

	mu      sync.Mutex
	total   int64
	done    int64
	began   time.Time
	printed time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, began: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) start(total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.began = total, time.Now()
	fmt.Fprintf(p.w, "replaying %d messages\n", total)
}

func (p *progress) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	every := 2 * time.Second
	if p.terminal {
		every = 100 * time.Millisecond
	}
	if time.Since(p.printed) >= every || p.done >= p.total {
		p.print()
	}
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) print() {
	p.printed = time.Now()
	elapsed := time.Since(p.began).Seconds()
	rate := float64(p.done) / max(elapsed, 1e-3)
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(p.total-p.done)/rate) * time.Second).Round(time.Second).String()
	}
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.done) / float64(p.total)
	}
	if p.terminal {
		const width = 30
		bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(".", width-int(frac*width))
		fmt.Fprintf(p.w, "\r[%s] %d/%d events  %.0f ev/s  ETA %s ", bar, p.done, p.total, rate, eta)
		return
	}
	fmt.Fprintf(p.w, "%d/%d events (%.0f%%), %.0f ev/s, ETA %s\n", p.done, p.total, 100*frac, rate, eta)
}
