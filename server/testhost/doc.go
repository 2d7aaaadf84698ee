// Package testhost runs a Mattermost server plugin the way Mattermost does,
// for integration tests: the plugin is started by the server's own
// plugin.Environment (real supervisor, real go-plugin RPC, real hooks and
// API RPC), and served an in-memory plugin API over shared server state.
//
// A Server is the shared state of one installation (users, teams,
// channels, posts, reactions, files, the plugin KV store, the
// configuration); its Nodes are cluster members, each with its own plugin
// environment and plugin process. Hooks fire on the node that handles the
// request, as on a real cluster; PublishPluginClusterEvent reaches the
// other nodes.
//
// Running the real bundle (built by `make dist`, or built from ./server):
//
//	func TestMain(m *testing.M) { testhost.Main(m) } // removes cached builds
//
//	func TestBridge(t *testing.T) {
//		s := testhost.NewServer(t, testhost.WithBundle(testhost.PluginDir(t)), testhost.WithNodes(2))
//		for _, n := range s.Nodes() {
//			if err := n.Activate(); err != nil {
//				t.Fatal(err)
//			}
//		}
//		alice := s.CreateUser("alice", false)
//		ch := s.CreateChannel(s.DefaultTeam().Id, "town")
//		s.AddToChannel(alice.Id, ch.Id)
//		resp, appErr := s.Node(0).ExecuteCommand(alice.Id, ch.Id, s.DefaultTeam().Id, "/xmppbridge status")
//		...
//	}
//
// Running the plugin in the test binary (coverage, test-only code), still
// through the RPC boundary:
//
//	s := testhost.NewServer(t, testhost.WithPluginID("com.mattermost.bridge"))
//	err := s.Node(0).ActivateInProcess(testhost.RepoManifest(t), func() any { return newTestPlugin() })
//
// Acting as a user (Node.CreatePost, UpdatePost, DeletePost, AddReaction,
// ExecuteCommand, ServeHTTP...) fires the hooks a real server fires; so do
// the plugin's own API calls, on its own node, asynchronously for the
// "has been" hooks. Server.Logs returns every log line; the logs are
// written with t.Log when a test fails or BRIDGE_TEST_VERBOSE=1.
//
// Node.ServeMetrics hands /plugins/<id>/metrics to the plugin's
// ServeMetrics hook the way the server's metrics listener does.
//
// Server.ListenHTTP serves the plugin's /plugins/<id>/... endpoints on a
// real port, for other processes (a Matrix homeserver) to call, with an
// optional interceptor to lose or fake responses; Server.FailKV makes the
// next plugin KV calls fail.
//
// WithReplicaLag (or Server.SetReplicaLag) gives the server read replicas
// that lag behind, like SqlSettings.DataSourceReplicas: the plugin API
// reads the real server serves from a replica (KVGet, KVList, GetPost,
// GetPostsSince and the other post reads; see replica.go) see the state as
// of the lag ago, while writes and compare-and-set act on the primary, and
// so do the Server's accessors tests check with.
//
// WithSharedChannels turns on shared channels (Connected Workspaces): the
// share and invite calls work, and a sync service runs as the server's
// platform/services/sharedchannel does, calling the plugin's
// OnSharedChannelsSyncMsg, attachment and profile-image hooks and pinging
// its remotes on the leader node (sync.go; Server.SyncCalls lists the
// calls, SetSyncDelay and SetPingInterval shorten its timings). Without
// it the share calls fail as on a server without them.
//
// The plugin API methods the host does not implement (see
// api_stubs_gen.go, written by `go generate`) return an error saying
// "not implemented by the test host: <Method>".
package testhost

//go:generate go run ./internal/genstubs
