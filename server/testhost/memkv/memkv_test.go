package memkv

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

func TestAtomicSetOnlyWhenOldValueMatches(t *testing.T) {
	kv := New(nil).Plugin("p")
	ok, err := kv.KVSetWithOptions("k", []byte("a"), model.PluginKVSetOptions{Atomic: true})
	if err != nil || !ok {
		t.Fatalf("insert-if-absent: ok=%v err=%v", ok, err)
	}
	if ok, _ = kv.KVSetWithOptions("k", []byte("b"), model.PluginKVSetOptions{Atomic: true}); ok {
		t.Fatal("insert-if-absent succeeded over an existing key")
	}
	if ok, _ = kv.KVSetWithOptions("k", []byte("b"), model.PluginKVSetOptions{Atomic: true, OldValue: []byte("x")}); ok {
		t.Fatal("CAS with the wrong old value succeeded")
	}
	if ok, _ = kv.KVSetWithOptions("k", []byte("b"), model.PluginKVSetOptions{Atomic: true, OldValue: []byte("a")}); !ok {
		t.Fatal("CAS with the right old value failed")
	}
	if ok, _ = kv.KVSetWithOptions("k", nil, model.PluginKVSetOptions{Atomic: true, OldValue: []byte("a")}); ok {
		t.Fatal("compare-and-delete with a stale value succeeded")
	}
	if ok, _ = kv.KVSetWithOptions("k", nil, model.PluginKVSetOptions{Atomic: true, OldValue: []byte("b")}); !ok {
		t.Fatal("compare-and-delete failed")
	}
	if v, _ := kv.KVGet("k"); v != nil {
		t.Fatalf("value after delete = %q", v)
	}
	if _, err = kv.KVSetWithOptions("k", []byte("a"), model.PluginKVSetOptions{OldValue: []byte("a")}); err == nil {
		t.Fatal("OldValue without Atomic was accepted")
	}
	if _, err = kv.KVSetWithOptions(strings.Repeat("x", 151), []byte("a"), model.PluginKVSetOptions{}); err == nil {
		t.Fatal("a 151-rune key was accepted")
	}
}

func TestConcurrentCASLosesNoUpdate(t *testing.T) {
	kv := New(nil).Plugin("p")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				for {
					old, _ := kv.KVGet("n")
					var n int
					if old != nil {
						fmt.Sscan(string(old), &n)
					}
					if ok, _ := kv.KVSetWithOptions("n", []byte(fmt.Sprint(n+1)), model.PluginKVSetOptions{Atomic: true, OldValue: old}); ok {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if v, _ := kv.KVGet("n"); string(v) != "400" {
		t.Fatalf("counter = %s, want 400", v)
	}
}

func TestExpiryHidesKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	s := New(func() time.Time { return now })
	kv := s.Plugin("p")
	kv.KVSetWithOptions("gone", []byte("x"), model.PluginKVSetOptions{ExpireInSeconds: 10})
	kv.KVSetWithOptions("kept", []byte("y"), model.PluginKVSetOptions{})
	now = now.Add(11 * time.Second)
	if v, _ := kv.KVGet("gone"); v != nil {
		t.Fatalf("expired key still readable: %q", v)
	}
	if keys, _ := kv.KVList(0, 10); len(keys) != 1 || keys[0] != "kept" {
		t.Fatalf("list = %v", keys)
	}
	if ok, _ := kv.KVSetWithOptions("gone", []byte("z"), model.PluginKVSetOptions{Atomic: true}); !ok {
		t.Fatal("insert-if-absent failed over an expired key")
	}
}

func TestListPagesInKeyOrderPerPlugin(t *testing.T) {
	s := New(nil)
	for i := range 25 {
		s.Plugin("p").KVSetWithOptions(fmt.Sprintf("k%02d", i), []byte("v"), model.PluginKVSetOptions{})
	}
	s.Plugin("other").KVSetWithOptions("z", []byte("v"), model.PluginKVSetOptions{})
	var all []string
	for page := 0; ; page++ {
		keys, err := s.Plugin("p").KVList(page, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		all = append(all, keys...)
	}
	if len(all) != 25 || all[0] != "k00" || all[24] != "k24" {
		t.Fatalf("pages = %v", all)
	}
}
