package bridge

import (
	"context"
	"fmt"
	"io"
)

// maxUnlimitedFile bounds a file read when no limit is configured, so one
// file cannot take all memory.
const maxUnlimitedFile = 1 << 30

// ReadAttachment reads a's bytes, at most limit of them (0 means 1 GiB). A
// file over the limit, by its declared size or by what it holds, is a
// permanent ReasonTooLarge drop; a failure to read it is transient.
func ReadAttachment(ctx context.Context, a Attachment, limit int64) ([]byte, error) {
	if a.Open == nil {
		return nil, Permanentf("attachment %q has no content", a.Name)
	}
	if limit <= 0 {
		limit = maxUnlimitedFile
	}
	if a.Size > limit {
		return nil, Dropf(ReasonTooLarge, "attachment %q is %d bytes, over the %d-byte limit", a.Name, a.Size, limit)
	}
	r, err := a.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("read attachment %q: %w", a.Name, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read attachment %q: %w", a.Name, err)
	}
	if int64(len(data)) > limit {
		return nil, Dropf(ReasonTooLarge, "attachment %q is over the %d-byte limit", a.Name, limit)
	}
	return data, nil
}
