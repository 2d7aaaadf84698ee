//go:build tools

// Package tools pins the Dendrite Matrix homeserver used by the Matrix
// bridge's integration tests (server/bridge/matrix/dendritetest). It lives in
// its own module so that Dendrite's many dependencies stay out of the
// plugin's go.mod. Build it with "make dendrite" from the repository root.
package tools

import (
	_ "github.com/element-hq/dendrite/cmd/dendrite"
	_ "github.com/element-hq/dendrite/cmd/generate-config"
	_ "github.com/element-hq/dendrite/cmd/generate-keys"
)
