package slacktest

// Outages of Socket Mode, for tests of what an app misses meanwhile.

// SocketsDown makes Socket Mode unreachable until SocketsUp, as an outage
// of Slack's socket service (or of the network to it) would: every open
// socket drops without a close frame and apps.connections.open answers
// internal_error. The Web API keeps answering. Events meanwhile wait for a
// socket, as they do whenever none is open.
func (s *Server) SocketsDown() {
	s.mu.Lock()
	s.socket.down = true
	conns := s.socket.all()
	s.notifyLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.drop()
	}
}

// SocketsUp ends SocketsDown: apps.connections.open answers again.
func (s *Server) SocketsUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.socket.down = false
	s.notifyLocked()
}

// GiveUpUnacked gives up on every event not acknowledged yet, as Slack
// does with an event it could not deliver once its few retries (spread
// over about an hour, the Events API's retry schedule) are spent: after a
// longer outage what happened meanwhile comes only from the history. Call
// it while no socket is open. It returns how many events were given up
// (Delivery.Failed).
func (s *Server) GiveUpUnacked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.socket.deliveries {
		if d.Acked || d.Failed {
			continue
		}
		if d.timer != nil {
			d.timer.Stop()
		}
		d.Failed = true
		n++
	}
	s.socket.waiting = nil
	s.notifyLocked()
	return n
}
