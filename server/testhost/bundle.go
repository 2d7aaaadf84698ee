package testhost

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
)

// BundleEnv names the environment variable that points PluginDir at a
// bundle tarball (as built by `make dist`) instead of building ./server.
const BundleEnv = "BRIDGE_TEST_BUNDLE"

// Bundle is an installed plugin: a plugins directory (what the server's
// PluginSettings.Directory points at) holding the plugin's folder.
type Bundle struct {
	Dir      string          // the plugins directory
	Manifest *model.Manifest // the plugin's manifest
}

// Path is the plugin's folder (Dir/<id>), what GetBundlePath returns.
func (b *Bundle) Path() string { return filepath.Join(b.Dir, b.Manifest.Id) }

// Bundles are cached per test binary (building or unpacking one for every
// test would be slow) in temporary directories that Main removes.
var cache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
	dirs    []string
}

type cacheEntry struct {
	once   sync.Once
	bundle *Bundle
	err    error
}

func cached(key string, create func(dir string) (*Bundle, error)) (*Bundle, error) {
	cache.mu.Lock()
	if cache.entries == nil {
		cache.entries = map[string]*cacheEntry{}
	}
	e := cache.entries[key]
	if e == nil {
		e = &cacheEntry{}
		cache.entries[key] = e
	}
	cache.mu.Unlock()
	e.once.Do(func() {
		dir, err := os.MkdirTemp("", "testhost-plugins-")
		if err != nil {
			e.err = err
			return
		}
		cache.mu.Lock()
		cache.dirs = append(cache.dirs, dir)
		cache.mu.Unlock()
		e.bundle, e.err = create(dir)
	})
	return e.bundle, e.err
}

// Main runs the tests and removes the bundles built or unpacked for them;
// call it from TestMain: func TestMain(m *testing.M) { testhost.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	CleanupBundles()
	os.Exit(code)
}

// CleanupBundles removes the cached bundles (Main calls it).
func CleanupBundles() {
	cache.mu.Lock()
	defer cache.mu.Unlock()
	for _, d := range cache.dirs {
		_ = os.RemoveAll(d)
	}
	cache.dirs = nil
	cache.entries = nil
}

// PluginDir returns the bridge plugin to test: the bundle tarball named by
// $BRIDGE_TEST_BUNDLE if set, else a fresh build of ./server of the
// repository (see BuildPlugin).
func PluginDir(t testing.TB) *Bundle {
	t.Helper()
	if p := os.Getenv(BundleEnv); p != "" {
		// A relative path is taken from the working directory (the test's
		// package) or, failing that, from the repository root.
		if _, err := os.Stat(p); err != nil && !filepath.IsAbs(p) {
			p = filepath.Join(RepoRoot(t), p)
		}
		return LoadBundle(t, p)
	}
	return BuildPlugin(t, RepoRoot(t))
}

// RepoRoot finds the repository root: the nearest directory above the
// working directory with a go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testhost: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testhost: no go.mod above the working directory")
		}
		dir = parent
	}
}

// RepoManifest reads the repository's plugin.json, e.g. for
// Node.ActivateInProcess.
func RepoManifest(t testing.TB) *model.Manifest {
	t.Helper()
	m, _, err := model.FindManifest(RepoRoot(t))
	if err != nil {
		t.Fatalf("testhost: reading plugin.json: %v", err)
	}
	return m
}

// LoadBundle unpacks a plugin bundle tarball (one top folder holding
// plugin.json, server/dist/plugin-<os>-<arch>, webapp/dist/main.js,
// assets/...) into a temporary plugins directory. Only this platform's
// server executable is extracted. The result is cached per test binary.
func LoadBundle(t testing.TB, tarGzPath string) *Bundle {
	t.Helper()
	abs, err := filepath.Abs(tarGzPath)
	if err != nil {
		t.Fatalf("testhost: LoadBundle: %v", err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		t.Fatalf("testhost: LoadBundle: %v", err)
	}
	key := fmt.Sprintf("bundle\x00%s\x00%d\x00%d", abs, st.Size(), st.ModTime().UnixNano())
	b, err := cached(key, func(dir string) (*Bundle, error) { return UnpackBundle(abs, dir) })
	if err != nil {
		t.Fatalf("testhost: LoadBundle(%s): %v", tarGzPath, err)
	}
	return b
}

// UnpackBundle unpacks a bundle tarball into the plugins directory dir.
// It uses the system's tar when there is one (much faster than Go's gzip
// under the race detector), else unpacks it itself.
func UnpackBundle(tarGzPath, dir string) (*Bundle, error) {
	if tarBin, err := exec.LookPath("tar"); err == nil && runtime.GOOS != "windows" {
		tmp, err := os.MkdirTemp(dir, ".unpack-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if err := exec.Command(tarBin, "-xzf", tarGzPath, "-C", tmp).Run(); err == nil {
			return installUnpacked(tmp, dir)
		}
		// Fall back to unpacking in Go, which reports errors better.
	}
	return unpackInGo(tarGzPath, dir)
}

// installUnpacked moves the single top folder of an unpacked bundle into dir
// under the plugin's ID, dropping other platforms' executables.
func installUnpacked(tmp, dir string) (*Bundle, error) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, err
	}
	if len(entries) != 1 || !entries[0].IsDir() {
		return nil, fmt.Errorf("a bundle must have exactly one top folder, found %d entries", len(entries))
	}
	top := filepath.Join(tmp, entries[0].Name())
	m, _, err := model.FindManifest(top)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	ourExe := "plugin-" + runtime.GOOS + "-" + runtime.GOARCH
	dist := filepath.Join(top, "server", "dist")
	if exes, err := os.ReadDir(dist); err == nil {
		for _, e := range exes {
			if name := e.Name(); strings.HasPrefix(name, "plugin-") && strings.TrimSuffix(name, ".exe") != ourExe {
				_ = os.Remove(filepath.Join(dist, name))
			}
		}
	}
	if err := os.Rename(top, filepath.Join(dir, m.Id)); err != nil {
		return nil, err
	}
	return checkBundle(dir, m)
}

func checkBundle(dir string, m *model.Manifest) (*Bundle, error) {
	exe := m.GetExecutableForRuntime(runtime.GOOS, runtime.GOARCH)
	if exe == "" {
		return nil, fmt.Errorf("the bundle has no server executable for %s-%s", runtime.GOOS, runtime.GOARCH)
	}
	if _, err := os.Stat(filepath.Join(dir, m.Id, filepath.FromSlash(exe))); err != nil {
		return nil, fmt.Errorf("the bundle's server executable: %w", err)
	}
	return &Bundle{Dir: dir, Manifest: m}, nil
}

func unpackInGo(tarGzPath, dir string) (*Bundle, error) {
	f, err := os.Open(tarGzPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	ourExe := "plugin-" + runtime.GOOS + "-" + runtime.GOARCH
	tops := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if name == "." || strings.HasPrefix(name, "../") || path.IsAbs(name) || name == ".." {
			return nil, fmt.Errorf("unsafe path in bundle: %q", hdr.Name)
		}
		parts := strings.Split(name, "/")
		tops[parts[0]] = true
		// Other platforms' executables are not needed.
		if len(parts) == 4 && parts[1] == "server" && parts[2] == "dist" && strings.HasPrefix(parts[3], "plugin-") &&
			strings.TrimSuffix(parts[3], ".exe") != ourExe {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return nil, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return nil, err
			}
			mode := os.FileMode(hdr.Mode).Perm() | 0o600
			if len(parts) >= 3 && parts[1] == "server" {
				mode |= 0o100
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
			if err != nil {
				return nil, err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return nil, err
			}
			if err := out.Close(); err != nil {
				return nil, err
			}
		default:
			// links and other entries are not part of a plugin bundle
		}
	}
	if len(tops) != 1 {
		return nil, fmt.Errorf("a bundle must have exactly one top folder, found %d", len(tops))
	}
	var top string
	for k := range tops {
		top = k
	}
	m, _, err := model.FindManifest(filepath.Join(dir, top))
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	if top != m.Id {
		if err := os.Rename(filepath.Join(dir, top), filepath.Join(dir, m.Id)); err != nil {
			return nil, err
		}
	}
	return checkBundle(dir, m)
}

// BuildOptions says what Build builds.
type BuildOptions struct {
	ModuleDir string          // directory `go build` runs in (the repository root)
	Package   string          // package to build, relative to ModuleDir; default "./server"
	Manifest  *model.Manifest // default: the plugin.json of ModuleDir
	// Race builds with -race; default (nil) follows the test binary.
	Race *bool
	// Tags are build tags to build with.
	Tags []string
}

// BuildPlugin builds ./server of the repository at repoRoot for this
// platform (with -race when the test binary has the race detector) and
// installs it with the repository's plugin.json, its server.executables
// pointing at the build and its webapp removed (it is not built). Cached
// per test binary.
func BuildPlugin(t testing.TB, repoRoot string) *Bundle {
	t.Helper()
	return Build(t, BuildOptions{ModuleDir: repoRoot})
}

// Build builds and installs a plugin (see BuildOptions). Cached per test
// binary.
func Build(t testing.TB, opts BuildOptions) *Bundle {
	t.Helper()
	b, err := build(opts)
	if err != nil {
		t.Fatalf("testhost: building the plugin: %v", err)
	}
	return b
}

func build(opts BuildOptions) (*Bundle, error) {
	if opts.ModuleDir == "" {
		return nil, errors.New("BuildOptions.ModuleDir is required")
	}
	moduleDir, err := filepath.Abs(opts.ModuleDir)
	if err != nil {
		return nil, err
	}
	pkg := opts.Package
	if pkg == "" {
		pkg = "./server"
	}
	m := opts.Manifest
	if m == nil {
		if m, _, err = model.FindManifest(moduleDir); err != nil {
			return nil, fmt.Errorf("reading %s/plugin.json: %w", moduleDir, err)
		}
	}
	m = cloneManifest(m)
	race := raceEnabled
	if opts.Race != nil {
		race = *opts.Race
	}
	exe := "server/dist/plugin-" + runtime.GOOS + "-" + runtime.GOARCH
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	m.Server = &model.ManifestServer{Executables: map[string]string{runtime.GOOS + "-" + runtime.GOARCH: exe}}
	m.Webapp = nil
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(mj)
	key := fmt.Sprintf("build\x00%s\x00%s\x00%v\x00%s\x00%s", moduleDir, pkg, race, strings.Join(opts.Tags, ","), hex.EncodeToString(sum[:]))
	return cached(key, func(dir string) (*Bundle, error) {
		pluginDir := filepath.Join(dir, m.Id)
		args := []string{"build"}
		if race {
			args = append(args, "-race")
		}
		if len(opts.Tags) > 0 {
			args = append(args, "-tags", strings.Join(opts.Tags, ","))
		}
		args = append(args, "-o", filepath.Join(pluginDir, filepath.FromSlash(exe)), pkg)
		cmd := exec.Command("go", args...)
		cmd.Dir = moduleDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if err := copyDir(filepath.Join(moduleDir, "assets"), filepath.Join(pluginDir, "assets")); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(pluginDir, "plugin.json"), mj, 0o644); err != nil {
			return nil, err
		}
		return &Bundle{Dir: dir, Manifest: m}, nil
	})
}

// copyDir copies a directory tree, if it exists.
func copyDir(src, dst string) error {
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
