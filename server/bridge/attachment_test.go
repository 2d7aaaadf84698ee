package bridge

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadAttachment(t *testing.T) {
	file := func(content string, size int64) Attachment {
		return Attachment{Name: "f.txt", Size: size, Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(content)), nil
		}}
	}
	if data, err := ReadAttachment(context.Background(), file("hello", 5), 5); err != nil || string(data) != "hello" {
		t.Fatalf("within the limit: %q, %v", data, err)
	}
	if data, err := ReadAttachment(context.Background(), file("hello", 0), 0); err != nil || string(data) != "hello" {
		t.Fatalf("no limit: %q, %v", data, err)
	}
	for name, a := range map[string]Attachment{"declared": file("hi", 6), "actual": file("hello!", 0)} {
		if _, err := ReadAttachment(context.Background(), a, 5); DropCode(err) != ReasonTooLarge {
			t.Errorf("%s size over the limit: %v", name, err)
		}
	}
	if _, err := ReadAttachment(context.Background(), Attachment{Name: "x"}, 5); !IsPermanent(err) {
		t.Errorf("no content: %v", err)
	}
	failing := Attachment{Name: "x", Open: func(context.Context) (io.ReadCloser, error) { return nil, errors.New("gone") }}
	if _, err := ReadAttachment(context.Background(), failing, 5); err == nil || IsPermanent(err) {
		t.Errorf("open failure should be transient: %v", err)
	}
}
