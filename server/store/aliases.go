package store

// alias is a network's second name for something, e.g. the origin ID an
// XMPP client gave a message next to the ID the room assigned to it. Aliases
// expire with the message maps.
type alias struct {
	Namespace string `json:"ns"`
	Key       string `json:"key"`
	Value     string `json:"value"`
}

// SetAlias records that key means value in namespace.
func (s *Store) SetAlias(namespace, key, value string) error {
	for what, v := range map[string]string{"namespace": namespace, "alias key": key, "alias value": value} {
		if err := checkString(what, v); err != nil {
			return err
		}
	}
	return s.putJSON(aliasKey(namespace, key), alias{Namespace: namespace, Key: key, Value: value}, s.retention.Load())
}

// Alias returns what key means in namespace; ok=false when unknown. An
// alias this store set itself is read back as set, not from a read replica
// that may lag behind that write (a reaction taken back at once, a set of
// reactions changed twice): what it wrote is proven still there on the
// master by setting it onto itself.
func (s *Store) Alias(namespace, key string) (string, bool, error) {
	if err := checkString("namespace", namespace); err != nil {
		return "", false, err
	}
	if err := checkString("alias key", key); err != nil {
		return "", false, err
	}
	a, err := s.ownAlias(aliasKey(namespace, key))
	if err != nil || a == nil {
		a, _, err = getJSON[alias](s, aliasKey(namespace, key))
	}
	if err != nil || a == nil || a.Namespace != namespace || a.Key != key {
		return "", false, err
	}
	return a.Value, true, nil
}

// ownAlias is the alias at k as this store last set it, if the master
// still holds that; nil otherwise.
func (s *Store) ownAlias(k string) (*alias, error) {
	raw, ok := s.hint(k)
	if !ok {
		return nil, nil
	}
	held, err := s.confirm(k, raw, s.retention.Load())
	if err != nil || !held {
		return nil, err
	}
	return decodeJSON[alias](k, raw)
}
