package slacktest

import (
	"context"
	"fmt"
	"slices"
)

// This file is what tests read back: the workspace as Slack's people would
// see it, and waits that return as soon as a condition holds (every change
// wakes them; nothing sleeps for a fixed time).

// Messages returns a channel's messages, replies included, oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.ws.messages[channel] {
		if !m.deleted {
			out = append(out, s.ws.copyMessage(m))
		}
	}
	return out
}

// MessagesAfter returns a channel's messages after its first n, in the
// order they were posted (deleted ones included), and the count to pass
// next time: a watcher that reads only what is new.
func (s *Server) MessagesAfter(channel string, n int) ([]Message, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.ws.messages[channel]
	var out []Message
	for _, m := range all[min(n, len(all)):] {
		out = append(out, s.ws.copyMessage(m))
	}
	return out, len(all)
}

// History returns what the channel shows: top-level messages and replies
// also sent to the channel, oldest first.
func (s *Server) History(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.ws.messages[channel] {
		if m.inHistory() {
			out = append(out, s.ws.copyMessage(m))
		}
	}
	return out
}

// Thread returns a thread: the parent, then its replies, oldest first.
func (s *Server) Thread(channel, ts string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	parent := s.ws.message(channel, ts)
	if parent == nil {
		return nil
	}
	out := []Message{s.ws.copyMessage(parent)}
	for _, m := range s.ws.replies(channel, ts) {
		out = append(out, s.ws.copyMessage(m))
	}
	return out
}

// Message returns one live message.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.ws.message(channel, ts)
	if m == nil {
		return Message{}, false
	}
	return s.ws.copyMessage(m), true
}

// Channel returns a channel as stored.
func (s *Server) Channel(id string) (Channel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.ws.channels[id]
	if c == nil {
		return Channel{}, false
	}
	cc := *c
	cc.Members = slices.Clone(c.Members)
	return cc, true
}

// User returns a user as stored.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.ws.users[id]
	if u == nil {
		return User{}, false
	}
	return *u, true
}

// File returns a file with its bytes.
func (s *Server) File(id string) (File, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.ws.files[id]
	if f == nil {
		return File{}, false
	}
	c := *f
	c.Content = slices.Clone(f.Content)
	c.Channels = slices.Clone(f.Channels)
	return c, true
}

// WaitFor returns when cond holds, checking it after every change, or the
// context's error (with what) when the context ends first. cond may call
// the server's other methods.
func (s *Server) WaitFor(ctx context.Context, what string, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("slacktest: waiting for %s: %w", what, ctx.Err())
		}
	}
}

// WaitMessages waits until the channel has at least n messages (replies
// included) and returns them.
func (s *Server) WaitMessages(ctx context.Context, channel string, n int) ([]Message, error) {
	var msgs []Message
	err := s.WaitFor(ctx, fmt.Sprintf("%d messages in %s", n, channel), func() bool {
		msgs = s.Messages(channel)
		return len(msgs) >= n
	})
	return msgs, err
}

// WaitMessage waits for a message in the channel that match accepts.
func (s *Server) WaitMessage(ctx context.Context, channel string, match func(Message) bool) (Message, error) {
	var found Message
	err := s.WaitFor(ctx, "a matching message in "+channel, func() bool {
		for _, m := range s.Messages(channel) {
			if match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitCalls waits until a method has been called at least n times.
func (s *Server) WaitCalls(ctx context.Context, method string, n int) error {
	return s.WaitFor(ctx, fmt.Sprintf("%d calls of %s", n, method), func() bool { return s.CallCount(method) >= n })
}

// WaitConnections waits until exactly n sockets are open.
func (s *Server) WaitConnections(ctx context.Context, n int) error {
	return s.WaitFor(ctx, fmt.Sprintf("%d open sockets", n), func() bool { return s.OpenConnections() == n })
}

// WaitAcked waits until every event queued so far has been acknowledged.
func (s *Server) WaitAcked(ctx context.Context) error {
	return s.WaitFor(ctx, "every event acknowledged", func() bool {
		for _, d := range s.Deliveries() {
			if !d.Acked {
				return false
			}
		}
		return true
	})
}
