// helmlite renders a Helm chart the way `helm template` does, for offline
// checks: Debian bookworm has no helm package and CI has no internet, so this
// is built from Debian's Go sources (text/template + sprig + sigs.k8s.io/yaml)
// in GOPATH mode. It covers what deploy/helm/blueprint-sync uses: values.yaml
// deep-merged with -f files and --set, .Chart, .Release, .Capabilities
// (including --api-versions), .Template, include/tpl/required/fail/toYaml,
// NOTES.txt, templates/ subdirectories (test hooks are rendered as `helm template`
// does). Not covered: subcharts, .Files, hook ordering, lookup against a cluster.
// values.schema.json is validated by the node check (ajv), not here.
//
//	helmlite [-f values.yaml]... [--set a.b=c]... [--name REL] [--namespace NS]
//	         [--api-versions GROUP/VERSION]... [--kube-version v1.29.0] [--strict]
//	         [--output yaml|json] [--values-out FILE] [--notes FILE] CHARTDIR
//
// --output json prints [{"source": "chart/templates/x.yaml", "object": {...}}],
// each document parsed with yaml.v3 (which rejects duplicate keys). --strict
// makes a reference to a value that values.yaml does not define an error.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	yamlv3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"
)

// APIVersions mirrors Helm's chartutil.VersionSet: templates call
// .Capabilities.APIVersions.Has "monitoring.coreos.com/v1".
type APIVersions []string

func (v APIVersions) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// What a plain cluster serves (group/version and group/version/kind for the
// kinds the chart may ask about); CRD groups come only from --api-versions.
var builtinAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "policy/v1", "networking.k8s.io/v1", "autoscaling/v2",
	"rbac.authorization.k8s.io/v1", "storage.k8s.io/v1", "coordination.k8s.io/v1",
	"v1/ConfigMap", "v1/Secret", "v1/Service", "v1/ServiceAccount", "v1/PersistentVolumeClaim",
	"apps/v1/Deployment", "policy/v1/PodDisruptionBudget", "networking.k8s.io/v1/NetworkPolicy",
}

type options struct {
	valueFiles  []string
	sets        []string
	apiVersions []string
	name        string
	namespace   string
	kubeVersion string
	strict      bool
	output      string
	valuesOut   string
	notesOut    string
	chartDir    string
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: helmlite [-f values.yaml]... [--set a.b=c]... [--name REL] [--namespace NS]\n"+
		"                [--api-versions G/V]... [--kube-version vX.Y.Z] [--strict] [--output yaml|json]\n"+
		"                [--values-out FILE] [--notes FILE] CHARTDIR")
	os.Exit(2)
}

func parseArgs(args []string) options {
	o := options{name: "release-name", namespace: "default", kubeVersion: "v1.29.0", output: "yaml"}
	next := func(i *int, flag string) string {
		if *i+1 >= len(args) {
			fmt.Fprintf(os.Stderr, "helmlite: %s needs a value\n", flag)
			usage()
		}
		*i++
		return args[*i]
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		// Accept --flag=value as well as --flag value.
		if strings.HasPrefix(a, "--") && strings.Contains(a, "=") {
			kv := strings.SplitN(a, "=", 2)
			args = append(args[:i], append([]string{kv[0], kv[1]}, args[i+1:]...)...)
			a = kv[0]
		}
		switch a {
		case "-f", "--values":
			o.valueFiles = append(o.valueFiles, next(&i, a))
		case "--set":
			o.sets = append(o.sets, next(&i, a))
		case "--api-versions", "-a":
			o.apiVersions = append(o.apiVersions, strings.Split(next(&i, a), ",")...)
		case "--name":
			o.name = next(&i, a)
		case "--namespace", "-n":
			o.namespace = next(&i, a)
		case "--kube-version":
			o.kubeVersion = next(&i, a)
		case "--strict":
			o.strict = true
		case "--output", "-o":
			o.output = next(&i, a)
		case "--values-out":
			o.valuesOut = next(&i, a)
		case "--notes":
			o.notesOut = next(&i, a)
		case "-h", "--help":
			usage()
		default:
			if strings.HasPrefix(a, "-") || o.chartDir != "" {
				fmt.Fprintf(os.Stderr, "helmlite: unexpected argument %q\n", a)
				usage()
			}
			o.chartDir = a
		}
	}
	if o.chartDir == "" || (o.output != "yaml" && o.output != "json") {
		usage()
	}
	return o
}

func readYAMLMap(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	// sigs.k8s.io/yaml, as Helm uses: numbers become float64 exactly as in Helm,
	// so templates must convert (`int64`) where Helm would need it too.
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

// coalesce merges src over dst like Helm: maps merge recursively, anything
// else replaces, and an explicit null removes the key.
func coalesce(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sm, sok := v.(map[string]interface{})
		dm, dok := dst[k].(map[string]interface{})
		if sok && dok {
			dst[k] = coalesce(dm, sm)
		} else {
			dst[k] = v
		}
	}
	return dst
}

// setValue applies one --set a.b.c=v (scalars only: bool, int, null, string).
func setValue(values map[string]interface{}, expr string) error {
	kv := strings.SplitN(expr, "=", 2)
	if len(kv) != 2 || kv[0] == "" {
		return fmt.Errorf("--set %q: want key=value", expr)
	}
	var v interface{} = kv[1]
	switch kv[1] {
	case "true":
		v = true
	case "false":
		v = false
	case "null":
		v = nil
	default:
		if n, err := strconv.ParseInt(kv[1], 10, 64); err == nil {
			v = n
		}
	}
	path := strings.Split(kv[0], ".")
	m := values
	for _, p := range path[:len(path)-1] {
		child, ok := m[p].(map[string]interface{})
		if !ok {
			child = map[string]interface{}{}
			m[p] = child
		}
		m = child
	}
	if v == nil {
		delete(m, path[len(path)-1])
	} else {
		m[path[len(path)-1]] = v
	}
	return nil
}

func loadChart(dir string) (map[string]interface{}, error) {
	raw, err := readYAMLMap(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	// Helm exposes Chart.yaml keys capitalised: appVersion -> .Chart.AppVersion.
	chart := map[string]interface{}{}
	for k, v := range raw {
		if k == "" {
			continue
		}
		chart[strings.ToUpper(k[:1])+k[1:]] = v
	}
	for _, k := range []string{"Name", "Version"} {
		if s, _ := chart[k].(string); s == "" {
			return nil, fmt.Errorf("Chart.yaml: %s is required", strings.ToLower(k))
		}
	}
	if chart["ApiVersion"] != "v2" {
		return nil, errors.New("Chart.yaml: apiVersion must be v2")
	}
	return chart, nil
}

func funcMap(t **template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	// Helm removes these so a render cannot depend on the machine it runs on.
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = func(v interface{}) string {
		b, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(b), "\n")
	}
	f["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		var b bytes.Buffer
		err := (*t).ExecuteTemplate(&b, name, data)
		return b.String(), err
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		c, err := (*t).Clone()
		if err != nil {
			return "", err
		}
		x, err := c.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		err = x.Execute(&b, data)
		return b.String(), err
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	return f
}

type rendered struct {
	Source string      `json:"source"`
	Object interface{} `json:"object"`
	text   string
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

func isBlank(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		l := strings.TrimSpace(line)
		if l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// toJSONable turns yaml.v3 output into something encoding/json accepts.
func toJSONable(v interface{}) (interface{}, error) {
	switch x := v.(type) {
	case map[string]interface{}:
		for k, e := range x {
			j, err := toJSONable(e)
			if err != nil {
				return nil, err
			}
			x[k] = j
		}
		return x, nil
	case map[interface{}]interface{}:
		return nil, fmt.Errorf("non-string mapping key in %v", x)
	case []interface{}:
		for i, e := range x {
			j, err := toJSONable(e)
			if err != nil {
				return nil, err
			}
			x[i] = j
		}
		return x, nil
	default:
		return v, nil
	}
}

func run(o options) error {
	chart, err := loadChart(o.chartDir)
	if err != nil {
		return err
	}
	chartName := chart["Name"].(string)
	values, err := readYAMLMap(filepath.Join(o.chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	for _, f := range o.valueFiles {
		override, err := readYAMLMap(f)
		if err != nil {
			return err
		}
		values = coalesce(values, override)
	}
	for _, s := range o.sets {
		if err := setValue(values, s); err != nil {
			return err
		}
	}
	if o.valuesOut != "" {
		b, err := json.MarshalIndent(values, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.valuesOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}

	kv := strings.TrimPrefix(o.kubeVersion, "v")
	parts := strings.SplitN(kv, ".", 3)
	if len(parts) < 2 {
		return fmt.Errorf("--kube-version %q: want vMAJOR.MINOR[.PATCH]", o.kubeVersion)
	}
	apis := append(APIVersions{}, builtinAPIVersions...)
	apis = append(apis, o.apiVersions...)
	top := map[string]interface{}{
		"Values": values,
		"Chart":  chart,
		"Release": map[string]interface{}{
			"Name": o.name, "Namespace": o.namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{
				"Version": "v" + kv, "GitVersion": "v" + kv, "Major": parts[0], "Minor": parts[1],
			},
			"APIVersions": apis,
			"HelmVersion": map[string]interface{}{"Version": "v3.14.0"},
		},
	}

	var t *template.Template
	t = template.New(chartName)
	if o.strict {
		t = t.Option("missingkey=error")
	} else {
		t = t.Option("missingkey=zero")
	}
	t = t.Funcs(funcMap(&t))
	tdir := filepath.Join(o.chartDir, "templates")
	// Recursively, as Helm does: templates/tests/ holds the `helm test` hooks.
	// Names are relative to templates/ ("tests/x.yaml"); "_" files are partials.
	var names []string
	err = filepath.WalkDir(tdir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tdir, p)
		n := filepath.ToSlash(rel)
		base := e.Name()
		if !(strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml") ||
			strings.HasSuffix(base, ".tpl") || base == "NOTES.txt") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		full := chartName + "/templates/" + n
		if _, err := t.New(full).Parse(string(data)); err != nil {
			return fmt.Errorf("parse error in %s: %v", full, err)
		}
		names = append(names, n)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)

	var docs []rendered
	for _, n := range names {
		if strings.HasPrefix(filepath.Base(n), "_") || strings.HasSuffix(n, ".tpl") {
			continue
		}
		full := chartName + "/templates/" + n
		scope := map[string]interface{}{}
		for k, v := range top {
			scope[k] = v
		}
		scope["Template"] = map[string]interface{}{"Name": full, "BasePath": chartName + "/templates"}
		var b bytes.Buffer
		if err := t.ExecuteTemplate(&b, full, scope); err != nil {
			return fmt.Errorf("execution error in %s: %v", full, err)
		}
		out := strings.ReplaceAll(b.String(), "<no value>", "")
		if n == "NOTES.txt" {
			if o.notesOut != "" {
				if err := os.WriteFile(o.notesOut, []byte(out), 0o644); err != nil {
					return err
				}
			}
			continue
		}
		for _, doc := range docSeparator.Split(out, -1) {
			if isBlank(doc) {
				continue
			}
			var obj interface{}
			dec := yamlv3.NewDecoder(strings.NewReader(doc))
			if err := dec.Decode(&obj); err != nil {
				return fmt.Errorf("%s: rendered YAML does not parse: %v\n%s", full, err, doc)
			}
			j, err := toJSONable(obj)
			if err != nil {
				return fmt.Errorf("%s: %v", full, err)
			}
			docs = append(docs, rendered{Source: full, Object: j, text: strings.Trim(doc, "\n")})
		}
	}

	if o.output == "json" {
		b, err := json.MarshalIndent(docs, "", "  ")
		if err != nil {
			return err
		}
		fmt.Println(string(b))
		return nil
	}
	for _, d := range docs {
		fmt.Printf("---\n# Source: %s\n%s\n", d.Source, d.text)
	}
	return nil
}

func main() {
	if err := run(parseArgs(os.Args[1:])); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}
