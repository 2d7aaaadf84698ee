package testhost

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
)

// writeBundle packs the built test plugin the way `make dist` does: one top
// folder with plugin.json, executables for several platforms, the webapp
// bundle and assets.
func writeBundle(t *testing.T, built *Bundle) string {
	t.Helper()
	exe, err := os.ReadFile(filepath.Join(built.Path(), filepath.FromSlash(built.Manifest.GetExecutableForRuntime(runtime.GOOS, runtime.GOARCH))))
	if err != nil {
		t.Fatal(err)
	}
	m := cloneManifest(built.Manifest)
	ours := runtime.GOOS + "-" + runtime.GOARCH
	m.Server = &model.ManifestServer{Executables: map[string]string{
		ours:           "server/dist/plugin-" + ours,
		"plan9-mips64": "server/dist/plugin-plan9-mips64",
	}}
	m.Webapp = &model.ManifestWebapp{BundlePath: "webapp/dist/main.js"}
	mj, _ := json.Marshal(m)

	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz, _ := gzip.NewWriterLevel(f, gzip.NoCompression)
	tw := tar.NewWriter(gz)
	add := func(name string, mode int64, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	top := "packaged-folder/"
	if err := tw.WriteHeader(&tar.Header{Name: top, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
		t.Fatal(err)
	}
	add(top+"plugin.json", 0o644, mj)
	add(top+"server/dist/plugin-"+ours, 0o755, exe)
	add(top+"server/dist/plugin-plan9-mips64", 0o755, []byte("not for this platform"))
	add(top+"webapp/dist/main.js", 0o644, []byte("console.log('hostcheck')"))
	add(top+"assets/icon.svg", 0o644, []byte("<svg/>"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadBundleAndActivate(t *testing.T) {
	t.Parallel()
	b := LoadBundle(t, writeBundle(t, hostcheckBundle(t)))
	if b.Manifest.Id != "com.mattermost.testhost.hostcheck" || !b.Manifest.HasWebapp() {
		t.Fatalf("manifest = %+v", b.Manifest)
	}
	if _, err := os.Stat(filepath.Join(b.Path(), "assets", "icon.svg")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.Path(), "server", "dist", "plugin-plan9-mips64")); !os.IsNotExist(err) {
		t.Fatalf("another platform's executable was extracted: %v", err)
	}
	f := newFixture(t, WithBundle(b))
	n := f.s.Node(0)
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	if got := f.cmd(t, n, "/hostcheck config"); got != "hello" {
		t.Fatalf("greeting %q", got)
	}
	if p, _ := n.API("").GetBundlePath(); p != b.Path() {
		t.Fatalf("GetBundlePath = %q, want %q", p, b.Path())
	}
}

func TestUnpackInGo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := unpackInGo(writeBundle(t, hostcheckBundle(t)), dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Path() != filepath.Join(dir, "com.mattermost.testhost.hostcheck") {
		t.Fatalf("path %s", b.Path())
	}
	if _, err := os.Stat(filepath.Join(b.Path(), "webapp", "dist", "main.js")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.Path(), "server", "dist", "plugin-plan9-mips64")); !os.IsNotExist(err) {
		t.Fatalf("another platform's executable was extracted: %v", err)
	}

	evil := filepath.Join(t.TempDir(), "evil.tar.gz")
	f, _ := os.Create(evil)
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	_ = tw.WriteHeader(&tar.Header{Name: "../escape.txt", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("x"))
	_ = tw.Close()
	_ = gz.Close()
	_ = f.Close()
	if _, err := unpackInGo(evil, t.TempDir()); err == nil {
		t.Fatal("a path escaping the directory was accepted")
	}
}
