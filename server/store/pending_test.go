package store

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func pendingIDs(t *testing.T, s *Store, ns string) []string {
	t.Helper()
	list, err := s.ListPending(ns)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range list {
		ids = append(ids, p.ID+"="+string(p.Value))
	}
	slices.Sort(ids)
	return ids
}

func TestPendingRecords(t *testing.T) {
	s, _ := newTestStore(t)
	must(t, s.SavePending("matrix-txn", "txn1", json.RawMessage(`{"a":1}`)))
	// IDs are anything a homeserver sends: upper case and ':' get hashed
	// into the key, and the record keeps the ID itself.
	must(t, s.SavePending("matrix-txn", "Txn:2/"+strings.Repeat("x", 100), json.RawMessage(`[2]`)))
	must(t, s.SavePending("other", "txn1", json.RawMessage(`3`)))
	must(t, s.SavePending("matrix-txn", "txn1", json.RawMessage(`{"a":4}`))) // replaces

	want := []string{"Txn:2/" + strings.Repeat("x", 100) + "=[2]", `txn1={"a":4}`}
	if got := pendingIDs(t, s, "matrix-txn"); !slices.Equal(got, want) {
		t.Fatalf("ListPending = %q, want %q", got, want)
	}
	must(t, s.DeletePending("matrix-txn", "txn1"))
	must(t, s.DeletePending("matrix-txn", "txn1")) // already gone
	if got := pendingIDs(t, s, "matrix-txn"); len(got) != 1 {
		t.Fatalf("after delete ListPending = %q", got)
	}
	if got := pendingIDs(t, s, "other"); !slices.Equal(got, []string{"txn1=3"}) {
		t.Fatalf("other namespace = %q", got)
	}
}

func TestPendingRefusesBadInput(t *testing.T) {
	s, kv := newTestStore(t)
	for name, err := range map[string]error{
		"empty ID":       s.SavePending("ns", "", json.RawMessage(`1`)),
		"empty ns":       s.SavePending("", "id", json.RawMessage(`1`)),
		"not JSON":       s.SavePending("ns", "id", json.RawMessage(`{`)),
		"delete no ID":   s.DeletePending("ns", ""),
		"list no ns":     func() error { _, err := s.ListPending(""); return err }(),
		"too long an ID": s.SavePending("ns", strings.Repeat("x", maxField+1), json.RawMessage(`1`)),
	} {
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
	}
	if keys, _ := kv.KVList(0, 100); len(keys) != 0 {
		t.Fatalf("bad input wrote %q", keys)
	}
}

// GetPending reads one record as the master holds it: a record another
// node saved or deleted a moment ago is seen so, however far behind the
// replica is.
func TestGetPendingUnderReplicaLag(t *testing.T) {
	t.Parallel()
	a, b, _ := newLaggedStores(t)
	get := func(s *Store) string {
		t.Helper()
		v, ok, err := s.GetPending("portal", "slack|C1")
		must(t, err)
		if !ok {
			return "none"
		}
		return string(v)
	}
	if got := get(a); got != "none" {
		t.Fatalf("before any save: %s", got)
	}
	must(t, a.SavePending("portal", "slack|C1", json.RawMessage(`{"name":"x"}`)))
	if got := get(b); got != `{"name":"x"}` {
		t.Fatalf("right after another node saved it: %s", got)
	}
	must(t, a.SavePending("portal", "slack|C1", json.RawMessage(`{"name":"y"}`)))
	if got := get(b); got != `{"name":"y"}` {
		t.Fatalf("right after another node replaced it: %s", got)
	}
	must(t, a.DeletePending("portal", "slack|C1"))
	if got := get(b); got != "none" {
		t.Fatalf("right after another node deleted it: %s", got)
	}
	if _, _, err := a.GetPending("", "x"); err == nil {
		t.Fatal("an empty namespace was accepted")
	}
}
