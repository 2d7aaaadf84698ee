// Command genstubs writes two files of package testhost (run it with
// `go generate` in server/testhost):
//
//   - api_stubs_gen.go: a method of *API for every method of plugin.API
//     that is not written by hand in the package's other files. A stub
//     returns an error (or *model.AppError) saying "not implemented by the
//     test host: <Method>" and records the call; a method without an error
//     result returns zero values.
//   - api_safe_gen.go: safeAPI, the plugin.API the environment serves to
//     plugins, forwarding every method to *API and turning a panic into an
//     error result (a panic inside the RPC server would kill the test
//     binary).
//
// plugin.API's methods are read by reflection, the hand-written ones by
// parsing the package with go/parser.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"log"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

const (
	stubsFile = "api_stubs_gen.go"
	safeFile  = "api_safe_gen.go"
)

func main() {
	dir := flag.String("dir", ".", "directory of package testhost")
	check := flag.Bool("check", false, "only check that the generated files are up to date")
	flag.Parse()

	handWritten, err := handWrittenMethods(*dir)
	if err != nil {
		log.Fatal(err)
	}
	apiType := reflect.TypeFor[plugin.API]()
	var methods []reflect.Method
	for m := range apiType.Methods() {
		methods = append(methods, m)
	}
	sort.Slice(methods, func(i, j int) bool { return methods[i].Name < methods[j].Name })

	stubs := generate(methods, func(m reflect.Method) bool { return !handWritten[m.Name] }, writeStub, "", nil)
	safe := generate(methods, func(reflect.Method) bool { return true }, writeSafe,
		"// safeAPI is the plugin.API served to plugins: it forwards to *API and\n"+
			"// turns a panic into an error result.\ntype safeAPI struct{ api *API }\n\nvar _ plugin.API = (*safeAPI)(nil)\n\n",
		importSet{apiType.PkgPath(): "plugin"})

	for name, src := range map[string][]byte{stubsFile: stubs, safeFile: safe} {
		out, err := format.Source(src)
		if err != nil {
			log.Fatalf("formatting %s: %v\n%s", name, err, src)
		}
		path := filepath.Join(*dir, name)
		if *check {
			cur, _ := os.ReadFile(path)
			if !bytes.Equal(cur, out) {
				log.Fatalf("%s is out of date: run go generate in server/testhost", path)
			}
			continue
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// handWrittenMethods returns the names of the methods of API declared in
// the package's files other than the generated ones and tests.
func handWrittenMethods(dir string) (map[string]bool, error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") || n == stubsFile || n == safeFile {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
				continue
			}
			t := fd.Recv.List[0].Type
			if st, ok := t.(*ast.StarExpr); ok {
				t = st.X
			}
			if id, ok := t.(*ast.Ident); ok && id.Name == "API" {
				names[fd.Name.Name] = true
			}
		}
	}
	return names, nil
}

type importSet map[string]string // path -> name

func (s importSet) name(t reflect.Type) string {
	if n, ok := s[t.PkgPath()]; ok {
		return n
	}
	name := t.String()
	if i := strings.LastIndex(name, "."); i >= 0 {
		name = name[:i]
	}
	for taken := true; taken; {
		taken = false
		for _, n := range s {
			if n == name {
				name += "x"
				taken = true
			}
		}
	}
	s[t.PkgPath()] = name
	return name
}

// typeString renders a type as Go source, registering the imports it needs.
func typeString(t reflect.Type, imp importSet) string {
	// mlog.Level is an alias of logr.Level; spell it as plugin.API does.
	if t == reflect.TypeFor[mlog.Level]() {
		imp[reflect.TypeFor[mlog.Logger]().PkgPath()] = "mlog"
		return "mlog.Level"
	}
	if t.Name() != "" {
		if t.PkgPath() == "" {
			return t.Name()
		}
		return imp.name(t) + "." + t.Name()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + typeString(t.Elem(), imp)
	case reflect.Slice:
		return "[]" + typeString(t.Elem(), imp)
	case reflect.Array:
		return fmt.Sprintf("[%d]%s", t.Len(), typeString(t.Elem(), imp))
	case reflect.Map:
		return "map[" + typeString(t.Key(), imp) + "]" + typeString(t.Elem(), imp)
	case reflect.Chan:
		switch t.ChanDir() {
		case reflect.RecvDir:
			return "<-chan " + typeString(t.Elem(), imp)
		case reflect.SendDir:
			return "chan<- " + typeString(t.Elem(), imp)
		default:
			return "chan " + typeString(t.Elem(), imp)
		}
	case reflect.Interface:
		if t.NumMethod() == 0 {
			return "any"
		}
	case reflect.Struct:
		if t.NumField() == 0 {
			return "struct{}"
		}
	case reflect.Func:
		var in, out []string
		for i := range t.NumIn() {
			s := typeString(t.In(i), imp)
			if t.IsVariadic() && i == t.NumIn()-1 {
				s = "..." + strings.TrimPrefix(s, "[]")
			}
			in = append(in, s)
		}
		for i := range t.NumOut() {
			out = append(out, typeString(t.Out(i), imp))
		}
		return "func(" + strings.Join(in, ", ") + ") (" + strings.Join(out, ", ") + ")"
	}
	log.Fatalf("genstubs: cannot render type %v", t)
	return ""
}

type sig struct {
	name    string
	params  []string // "p0 T0"
	args    []string // "p0", "p1..."
	results []string // "r0 T0"
	errKind string   // "appErr", "err" or ""
}

var (
	appErrType = reflect.TypeFor[*model.AppError]()
	errorType  = reflect.TypeFor[error]()
)

func signature(m reflect.Method, imp importSet) sig {
	t := m.Type
	s := sig{name: m.Name}
	for i := range t.NumIn() {
		ts := typeString(t.In(i), imp)
		arg := fmt.Sprintf("p%d", i)
		if t.IsVariadic() && i == t.NumIn()-1 {
			ts = "..." + strings.TrimPrefix(ts, "[]")
			s.args = append(s.args, arg+"...")
		} else {
			s.args = append(s.args, arg)
		}
		s.params = append(s.params, arg+" "+ts)
	}
	for i := range t.NumOut() {
		s.results = append(s.results, fmt.Sprintf("r%d %s", i, typeString(t.Out(i), imp)))
	}
	if n := t.NumOut(); n > 0 {
		switch t.Out(n - 1) {
		case appErrType:
			s.errKind = "appErr"
		case errorType:
			s.errKind = "err"
		}
	}
	return s
}

func (s sig) header(recv string) string {
	res := ""
	if len(s.results) > 0 {
		res = " (" + strings.Join(s.results, ", ") + ")"
	}
	return fmt.Sprintf("func (%s) %s(%s)%s", recv, s.name, strings.Join(s.params, ", "), res)
}

func (s sig) lastResult() string { return fmt.Sprintf("r%d", len(s.results)-1) }

func writeStub(b *bytes.Buffer, s sig) {
	fmt.Fprintf(b, "// %s is not implemented by the test host.\n", s.name)
	fmt.Fprintf(b, "%s {\n", s.header("a *API"))
	switch s.errKind {
	case "appErr":
		fmt.Fprintf(b, "\t%s = a.notImplementedAppErr(%q)\n", s.lastResult(), s.name)
	case "err":
		fmt.Fprintf(b, "\t%s = a.notImplementedErr(%q)\n", s.lastResult(), s.name)
	default:
		fmt.Fprintf(b, "\ta.notImplemented(%q)\n", s.name)
	}
	if len(s.results) > 0 {
		b.WriteString("\treturn\n")
	}
	b.WriteString("}\n\n")
}

func writeSafe(b *bytes.Buffer, s sig) {
	fmt.Fprintf(b, "%s {\n", s.header("s *safeAPI"))
	fmt.Fprintf(b, "\ts.api.called(%q)\n", s.name)
	b.WriteString("\tdefer func() {\n\t\tif r := recover(); r != nil {\n")
	switch s.errKind {
	case "appErr":
		fmt.Fprintf(b, "\t\t\t%s = s.api.panicAppErr(%q, r)\n", s.lastResult(), s.name)
	case "err":
		fmt.Fprintf(b, "\t\t\t%s = s.api.panicErr(%q, r)\n", s.lastResult(), s.name)
	default:
		fmt.Fprintf(b, "\t\t\ts.api.panicked(%q, r)\n", s.name)
	}
	b.WriteString("\t\t}\n\t}()\n")
	call := fmt.Sprintf("s.api.%s(%s)", s.name, strings.Join(s.args, ", "))
	if len(s.results) > 0 {
		fmt.Fprintf(b, "\treturn %s\n", call)
	} else {
		fmt.Fprintf(b, "\t%s\n", call)
	}
	b.WriteString("}\n\n")
}

func generate(methods []reflect.Method, include func(reflect.Method) bool, write func(*bytes.Buffer, sig), preamble string, imp importSet) []byte {
	if imp == nil {
		imp = importSet{}
	}
	var body bytes.Buffer
	body.WriteString(preamble)
	for _, m := range methods {
		if include(m) {
			write(&body, signature(m, imp))
		}
	}
	var b bytes.Buffer
	b.WriteString("// Code generated by internal/genstubs (go generate); DO NOT EDIT.\n\npackage testhost\n\n")
	if len(imp) > 0 {
		b.WriteString("import (\n")
		paths := make([]string, 0, len(imp))
		for p := range imp {
			paths = append(paths, p)
		}
		slices.SortFunc(paths, func(x, y string) int {
			xs, ys := !strings.Contains(strings.Split(x, "/")[0], "."), !strings.Contains(strings.Split(y, "/")[0], ".")
			if xs != ys {
				if xs {
					return -1
				}
				return 1
			}
			return strings.Compare(x, y)
		})
		for i, p := range paths {
			if i > 0 && strings.Contains(strings.Split(p, "/")[0], ".") && !strings.Contains(strings.Split(paths[i-1], "/")[0], ".") {
				b.WriteString("\n")
			}
			if n := imp[p]; n != filepath.Base(p) {
				fmt.Fprintf(&b, "\t%s %q\n", n, p)
			} else {
				fmt.Fprintf(&b, "\t%q\n", p)
			}
		}
		b.WriteString(")\n\n")
	}
	b.Write(body.Bytes())
	return b.Bytes()
}
