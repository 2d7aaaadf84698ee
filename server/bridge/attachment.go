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

// RefuseOver returns a reader of r's bytes that fails with a ReasonTooLarge
// drop once r holds more than limit of them, instead of ending there: a body
// cut at the limit would pass for the whole file. Closing it closes r.
func RefuseOver(r io.ReadCloser, limit int64, name string) io.ReadCloser {
	return &cappedReader{r: r, left: limit, limit: limit, name: name}
}

type cappedReader struct {
	r     io.ReadCloser
	left  int64 // bytes still allowed
	limit int64
	name  string
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, Dropf(ReasonTooLarge, "file %q is over the %d-byte limit", c.name, c.limit)
	}
	// Read one byte past the limit at most, to tell a file of exactly the
	// limit from a longer one.
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n + int(c.left), Dropf(ReasonTooLarge, "file %q is over the %d-byte limit", c.name, c.limit)
	}
	return n, err
}

func (c *cappedReader) Close() error { return c.r.Close() }
