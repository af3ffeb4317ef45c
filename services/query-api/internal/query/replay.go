package query

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/schema"
)

// Replay limits: a bulk replay handles at most limit records (default
// DefaultReplayLimit, at most MaxReplayLimit), replayChunk at a time.
const (
	DefaultReplayLimit = 1000
	MaxReplayLimit     = 10000
	replayChunk        = 500
	// maxExampleIDs bounds the error ids listed per failure group.
	maxExampleIDs = 5
	// maxChain bounds how far a replay follows replay_of to the record
	// that names the event.
	maxChain = 100
)

// Errors of replays.
var (
	// ErrReplayInvalid: the event of a single replay still fails the rules
	// (wrapped with its event.Reasons); nothing was published.
	ErrReplayInvalid = errors.New("the replayed event would fail again")
	// ErrReplayNotPublished: Kafka did not acknowledge a replay in time.
	// Records whose replay was acknowledged before keep their lineage.
	ErrReplayNotPublished = errors.New("the replay could not be published")
)

// Checks a replay applies before publishing, as the validator does.
const (
	CheckRules       = "rules"        // event.Rules, as configured (EYE_FUTURE_TOLERANCE)
	CheckSchemas     = "schemas"      // the per-type JSON Schemas published to the validators
	CheckStrictTypes = "strict_types" // unknown_event_type for applications with strict types
)

// ReplayResult is the outcome for one record of a single replay.
type ReplayResult struct {
	ErrorID uuid.UUID `json:"error_id"`
	// EventID is the id the event is (or would be) published and stored
	// under: the record's id, the id of the record a chain of failed
	// replays started from, or for an invalid_envelope record a UUIDv5 of
	// its id.
	EventID uuid.UUID `json:"event_id"`
	// Passes reports whether the event passes the current checks.
	Passes bool `json:"passes"`
	// Published: put on the raw topic (never on a dry run).
	Published bool `json:"published"`
	// Attempt is the replay attempt number published; 0 when none was.
	Attempt int `json:"attempt" example:"1"`
	// Reasons are why the event still fails; empty when it passes.
	Reasons event.Reasons `json:"reasons"`
}

// ReplayFailure groups the candidates that still fail by reason code and
// field.
type ReplayFailure struct {
	Code  event.Code `json:"code" example:"schema_violation"`
	Field string     `json:"field,omitempty" example:"/data/path"`
	// Count is how many candidates fail for it (a candidate with several
	// reasons counts in each of their groups).
	Count int `json:"count" example:"12"`
	// Message is the message of one of them.
	Message string `json:"message" example:"missing property 'path'"`
	// ErrorIDs are some of the records concerned.
	ErrorIDs []uuid.UUID `json:"error_ids"`
}

// ReplayReport answers a replay or a dry run.
type ReplayReport struct {
	DryRun bool `json:"dry_run"`
	// Matched is how many records were examined (at most the limit).
	Matched int `json:"matched" example:"120"`
	// Passing pass the current checks: on a dry run they would be
	// published, otherwise they were.
	Passing int `json:"passing" example:"100"`
	// Failing still fail and are not published.
	Failing   int `json:"failing" example:"20"`
	Published int `json:"published" example:"100"`
	// Failures say why, grouped, most frequent first.
	Failures []ReplayFailure `json:"failures"`
	// More: the limit was reached and more records match.
	More bool `json:"more"`
	// Checked lists the checks applied. The writer's session checks
	// (unknown_session with strict sessions, session_conflict) are not:
	// an event failing those becomes a new error record.
	Checked []string `json:"checked" example:"rules,schemas,strict_types"`
	// Results has the outcome of a single replay (empty for a bulk one).
	Results []ReplayResult `json:"results,omitempty"`
}

// ReplayRoot is the record a chain of failed replays started from.
type ReplayRoot struct {
	ID uuid.UUID
	// Envelope: that record is an invalid_envelope one.
	Envelope bool
}

// SchemaSource is a published schema version as stored.
type SchemaSource struct {
	Category, Name string
	Version        int
	Schema         []byte
}

// Replays is the storage replays need.
type Replays interface {
	// Error returns one error record visible in sc.
	Error(ctx context.Context, sc Scope, id uuid.UUID) (Error, error)
	// OldestErrors returns up to n+1 error records matching f (visible in
	// sc), oldest detected first, after record after (nil: from the
	// first).
	OldestErrors(ctx context.Context, sc Scope, f ErrorFilter, after *Error, n int) ([]Error, error)
	// ReplayRoots finds, for each record of ids, the record its chain of
	// replay_of links started from (followed up to maxChain links; where a
	// link is missing, the last record found), by id of the record asked
	// for.
	ReplayRoots(ctx context.Context, ids []uuid.UUID, maxChain int) (map[uuid.UUID]ReplayRoot, error)
	// NextAttempts counts one more replay attempt of each record and
	// returns the attempt numbers by id.
	NextAttempts(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int, error)
	// MarkReplayed records that records ids were replayed as events (same
	// order), now.
	MarkReplayed(ctx context.Context, ids, events []uuid.UUID) error
	// StrictTypes reports whether application app accepts only event
	// types that have a schema (an unknown application does not).
	StrictTypes(ctx context.Context, app uuid.UUID) (bool, error)
	// PublishedSchemas lists the schema versions published to the
	// validators.
	PublishedSchemas(ctx context.Context) ([]SchemaSource, error)
}

// Replayer replays error records: it checks each candidate event with the
// validator's checks, publishes the ones that pass on the raw topic as the
// gateway would (same envelope, key and event id, the original received
// time), and records the lineage.
type Replayer struct {
	store   Replays
	rules   event.Rules
	pub     Publisher
	topic   string
	timeout time.Duration // for each publication
	schemas schemaCache
	now     func() time.Time
}

// NewReplayer returns a Replayer checking with rules and publishing on
// rawTopic through pub, waiting at most publishTimeout for each
// acknowledgement.
func NewReplayer(store Replays, rules event.Rules, pub Publisher, rawTopic string, publishTimeout time.Duration) (*Replayer, error) {
	switch {
	case store == nil || pub == nil:
		return nil, errors.New("query: replayer needs a store and a publisher")
	case rawTopic == "":
		return nil, errors.New("query: replayer needs the raw topic")
	case publishTimeout <= 0:
		return nil, errors.New("query: publish timeout must be positive")
	}
	return &Replayer{store: store, rules: rules, pub: pub, topic: rawTopic, timeout: publishTimeout, now: time.Now}, nil
}

// candidate is one record to replay and the event it replays as.
type candidate struct {
	row     Error
	eventID uuid.UUID
	payload []byte
	reasons event.Reasons
}

// ReplayOne replays error record id (visible in sc) with payload, or with
// its original payload when payload is nil. A dry run only checks. A real
// replay of an event that still fails returns ErrReplayInvalid and
// publishes nothing.
func (r *Replayer) ReplayOne(ctx context.Context, sc Scope, id uuid.UUID, payload json.RawMessage, dryRun bool) (ReplayReport, error) {
	row, err := r.store.Error(ctx, sc, id)
	if err != nil {
		return ReplayReport{}, err
	}
	c := candidate{row: row, payload: payload}
	if payload == nil {
		if c.payload, err = row.Payload.Bytes(); err != nil {
			return ReplayReport{}, fmt.Errorf("payload of error %s: %w", row.ID, err)
		}
	}
	cs := []*candidate{&c}
	if err := r.prepare(ctx, cs); err != nil {
		return ReplayReport{}, err
	}
	rep := newReport(dryRun, cs)
	res := ReplayResult{ErrorID: row.ID, EventID: c.eventID, Passes: len(c.reasons) == 0, Reasons: c.reasons}
	if res.Reasons == nil {
		res.Reasons = event.Reasons{}
	}
	if !dryRun {
		if !res.Passes {
			return ReplayReport{}, fmt.Errorf("%w: %w", ErrReplayInvalid, c.reasons)
		}
		attempts, err := r.publish(ctx, cs)
		if err != nil {
			return ReplayReport{}, err
		}
		res.Published, res.Attempt, rep.Published = true, attempts[row.ID], 1
	}
	rep.Results = []ReplayResult{res}
	return rep, nil
}

// ReplayMatching replays up to limit error records matching f (visible in
// sc), oldest first, with their original payloads: the ones that pass the
// checks are published, the others reported. A dry run only checks.
func (r *Replayer) ReplayMatching(ctx context.Context, sc Scope, f ErrorFilter, limit int, dryRun bool) (ReplayReport, error) {
	if limit <= 0 {
		limit = DefaultReplayLimit
	}
	limit = min(limit, MaxReplayLimit)
	rep := newReport(dryRun, nil)
	var after *Error
	for remaining := limit; remaining > 0; {
		n := min(replayChunk, remaining)
		rows, err := r.store.OldestErrors(ctx, sc, f, after, n)
		if err != nil {
			return ReplayReport{}, err
		}
		more := len(rows) > n
		rows = rows[:min(len(rows), n)]
		cs := make([]*candidate, len(rows))
		for i, row := range rows {
			b, err := row.Payload.Bytes()
			if err != nil {
				return ReplayReport{}, fmt.Errorf("payload of error %s: %w", row.ID, err)
			}
			cs[i] = &candidate{row: row, payload: b}
		}
		if err := r.prepare(ctx, cs); err != nil {
			return ReplayReport{}, err
		}
		rep.add(cs)
		if !dryRun {
			passing := slices.DeleteFunc(slices.Clone(cs), func(c *candidate) bool { return len(c.reasons) > 0 })
			if _, err := r.publish(ctx, passing); err != nil {
				return ReplayReport{}, err
			}
			rep.Published += len(passing)
		}
		remaining -= len(rows)
		if !more {
			break
		}
		if remaining == 0 {
			rep.More = true
			break
		}
		after = &rows[len(rows)-1]
	}
	return rep, nil
}

// prepare resolves the event id of each candidate and checks its payload.
func (r *Replayer) prepare(ctx context.Context, cs []*candidate) error {
	if err := r.resolveEventIDs(ctx, cs); err != nil {
		return err
	}
	reg, err := r.schemas.registry(ctx, r.store)
	if err != nil {
		return err
	}
	strict := map[uuid.UUID]bool{}
	now := r.now()
	for _, c := range cs {
		if c.row.ApplicationID == uuid.Nil {
			c.reasons = event.Reasons{{Code: event.CodeUnknownApplication,
				Message: "the record's application is unknown (the record was not an envelope): it cannot be replayed"}}
			continue
		}
		f, reasons := r.rules.ValidateReceived(c.payload, c.row.ReceivedAt.Time, now)
		c.reasons = reasons
		obj := f.Object
		if obj == nil {
			continue // the rules reported it
		}
		res := reg.Check(obj)
		c.reasons = append(c.reasons, res.Reasons...)
		if !res.Untyped {
			continue
		}
		isStrict, ok := strict[c.row.ApplicationID]
		if !ok {
			if isStrict, err = r.store.StrictTypes(ctx, c.row.ApplicationID); err != nil {
				return err
			}
			strict[c.row.ApplicationID] = isStrict
		}
		if isStrict {
			c.reasons = append(c.reasons, schema.UnknownType(obj))
		}
	}
	return nil
}

// publish puts the candidates on the raw topic, each as its next replay
// attempt, and once Kafka acknowledged them records what each was replayed
// as. It returns the attempt numbers by error id.
func (r *Replayer) publish(ctx context.Context, cs []*candidate) (map[uuid.UUID]int, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(cs))
	for i, c := range cs {
		ids[i] = c.row.ID
	}
	attempts, err := r.store.NextAttempts(ctx, ids)
	if err != nil {
		return nil, err
	}
	msgs := make([]contract.Message, len(cs))
	for i, c := range cs {
		raw := contract.RawEvent{EventID: c.eventID, AppID: c.row.ApplicationID, ReceivedAt: c.row.ReceivedAt.UTC(),
			Payload: contract.NewPayload(c.payload), ReplayOf: &contract.Replay{ErrorID: c.row.ID, Attempt: attempts[c.row.ID]}}
		if msgs[i], err = contract.Encode(r.topic, sessionKey(c.payload), &raw); err != nil {
			return nil, err
		}
	}
	pctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.pub.Publish(pctx, msgs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrReplayNotPublished, err)
	}
	events := make([]uuid.UUID, len(cs))
	for i, c := range cs {
		events[i] = c.eventID
	}
	if err := r.store.MarkReplayed(ctx, ids, events); err != nil {
		return nil, err
	}
	return attempts, nil
}

// sessionKey is the raw topic's key for an event document: its session id
// in canonical form, as the gateway keys it, so a replayed event lands on
// its session's partition.
func sessionKey(payload []byte) string {
	obj, reason := event.DecodeObject(payload)
	if reason != nil {
		return ""
	}
	ref, _, _ := event.SessionRef(obj)
	if id, ok := event.ParseSessionID(ref); ok {
		return id.String()
	}
	return ref
}

func newReport(dryRun bool, cs []*candidate) ReplayReport {
	rep := ReplayReport{DryRun: dryRun, Failures: []ReplayFailure{}, Checked: []string{CheckRules, CheckSchemas, CheckStrictTypes}}
	rep.add(cs)
	return rep
}

// add counts cs in the report, grouping the failures by code and field.
func (rep *ReplayReport) add(cs []*candidate) {
	for _, c := range cs {
		rep.Matched++
		if len(c.reasons) == 0 {
			rep.Passing++
			continue
		}
		rep.Failing++
		type group struct {
			code  event.Code
			field string
		}
		seen := map[group]bool{} // count a candidate once per group
		for _, reason := range c.reasons {
			key := group{reason.Code, reason.Field}
			if seen[key] {
				continue
			}
			seen[key] = true
			i := slices.IndexFunc(rep.Failures, func(f ReplayFailure) bool { return f.Code == key.code && f.Field == key.field })
			if i < 0 {
				rep.Failures = append(rep.Failures, ReplayFailure{Code: reason.Code, Field: reason.Field, Message: reason.Message})
				i = len(rep.Failures) - 1
			}
			f := &rep.Failures[i]
			f.Count++
			if len(f.ErrorIDs) < maxExampleIDs {
				f.ErrorIDs = append(f.ErrorIDs, c.row.ID)
			}
		}
	}
	slices.SortStableFunc(rep.Failures, func(a, b ReplayFailure) int {
		return cmp.Or(b.Count-a.Count, cmp.Compare(a.Code, b.Code), cmp.Compare(a.Field, b.Field))
	})
}

// replayNamespace derives event ids for records whose own id is not an
// event id (invalid_envelope: derived from the bytes of a record that was
// not an envelope).
var replayNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://the-eye/replay"))

// resolveEventIDs sets the event id of each candidate: the id of the
// record its replay chain started from (for a record that was never
// replayed, its own id, which the gateway and the validator made the event
// id), or a UUIDv5 of it for an invalid_envelope record.
func (r *Replayer) resolveEventIDs(ctx context.Context, cs []*candidate) error {
	var chained []uuid.UUID
	for _, c := range cs {
		if c.row.ReplayOf != nil {
			chained = append(chained, c.row.ID)
		}
	}
	roots := map[uuid.UUID]ReplayRoot{}
	if len(chained) > 0 {
		var err error
		if roots, err = r.store.ReplayRoots(ctx, chained, maxChain); err != nil {
			return err
		}
	}
	for _, c := range cs {
		root, ok := roots[c.row.ID]
		if !ok {
			root = ReplayRoot{ID: c.row.ID, Envelope: slices.ContainsFunc(c.row.Reasons, func(r event.Reason) bool { return r.Code == event.CodeInvalidEnvelope })}
		}
		c.eventID = root.ID
		if root.Envelope {
			c.eventID = uuid.NewSHA1(replayNamespace, root.ID[:])
		}
	}
	return nil
}

// schemaCache builds the registry of the schema versions the validators
// apply (those published on the schemas topic), compiling each version
// once: versions are immutable.
type schemaCache struct {
	mu       sync.Mutex
	compiled map[string]*schema.Schema // by contract.SchemaKey
}

func (c *schemaCache) registry(ctx context.Context, s Replays) (*schema.Registry, error) {
	rows, err := s.PublishedSchemas(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.compiled == nil {
		c.compiled = map[string]*schema.Schema{}
	}
	reg := schema.NewRegistry()
	for _, r := range rows {
		key := contract.SchemaKey(r.Category, r.Name, r.Version)
		sc, ok := c.compiled[key]
		if !ok {
			var err error
			if sc, err = schema.Compile(r.Category, r.Name, r.Version, r.Schema); err != nil {
				continue // stored versions compiled when added; a validator would skip it too
			}
			c.compiled[key] = sc
		}
		reg.Put(sc)
	}
	return reg, nil
}
