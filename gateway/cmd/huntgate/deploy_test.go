package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/huntgate/huntgate/gateway"
)

const repoRoot = "../../.."

// flagNames lists huntgate's flags, from its own --help.
func flagNames(t *testing.T) map[string]bool {
	t.Helper()
	var out bytes.Buffer
	if _, err := gateway.ParseFlags([]string{"--help"}, nil, &out); err == nil {
		t.Fatal("--help did not stop")
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(out.String(), -1) {
		names[m[1]] = true
	}
	if !names["proxy-protocol"] || !names["redis"] {
		t.Fatalf("flags from --help: %v", names)
	}
	return names
}

// What can be checked of deploy/compose.yaml without a Docker engine: it
// parses, has Redis, three nodes and haproxy; every node flag and
// HUNTGATE_ variable is one huntgate has, and the node configuration parses
// as the binary would parse it (cluster mode, PROXY protocol); the files it
// mounts and builds from exist; haproxy gets every variable
// deploy/haproxy.cfg reads; the Dockerfile's sources exist and its
// HEALTHCHECK runs the healthcheck subcommand with flags it has.
func TestComposeFile(t *testing.T) {
	deploy := filepath.Join(repoRoot, "deploy")
	raw, err := os.ReadFile(filepath.Join(deploy, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Build *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			DependsOn   yaml.Node         `yaml:"depends_on"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, s := range []string{"redis", "node1", "node2", "node3", "haproxy"} {
		if _, ok := doc.Services[s]; !ok {
			t.Fatalf("no service %s", s)
		}
	}
	flags := flagNames(t)
	envFlag := map[string]bool{}
	for f := range flags {
		envFlag[gateway.EnvName(f)] = true
	}
	for _, name := range []string{"node1", "node2", "node3"} {
		s := doc.Services[name]
		if s.Build == nil {
			t.Fatalf("%s: no build", name)
		}
		dockerfile := filepath.Join(deploy, s.Build.Context, s.Build.Dockerfile)
		if _, err := os.Stat(dockerfile); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, a := range s.Command {
			f := strings.TrimPrefix(strings.SplitN(a, "=", 2)[0], "--")
			if !flags[f] {
				t.Errorf("%s: flag %s is not huntgate's", name, a)
			}
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			if strings.HasPrefix(k, "HUNTGATE_") && !envFlag[k] {
				t.Errorf("%s: %s sets no flag", name, k)
			}
			if strings.HasPrefix(v, "${") { // required from the host's environment
				v = "x"
			}
			env[k] = v
		}
		cfg, err := gateway.ParseFlags(s.Command, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%s: the binary would refuse its configuration: %v", name, err)
		}
		if cfg.Redis == "" || !cfg.ProxyProtocol || cfg.JWTSecret == "" || cfg.APIKey == "" || cfg.AdminAddr != ":8081" {
			t.Errorf("%s: configuration %+v", name, cfg)
		}
	}
	hp := doc.Services["haproxy"]
	cfgFile := ""
	for _, v := range hp.Volumes {
		src := strings.SplitN(v, ":", 2)[0]
		if strings.HasSuffix(src, "haproxy.cfg") {
			cfgFile = filepath.Join(deploy, src)
			if _, err := os.Stat(cfgFile); err != nil {
				t.Fatalf("haproxy mounts %s: %v", src, err)
			}
		}
	}
	if cfgFile == "" {
		t.Fatal("haproxy mounts no haproxy.cfg")
	}
	hcfg, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`).FindAllStringSubmatch(string(hcfg), -1) {
		if _, ok := hp.Environment[m[1]]; !ok && m[1] != "HUNTGATE_MAXCONN" {
			t.Errorf("haproxy.cfg reads %s, which compose does not set", m[1])
		}
	}
	if !strings.Contains(string(hcfg), "send-proxy-v2") {
		t.Error("haproxy.cfg does not send the PROXY protocol v2")
	}
	if bin, err := exec.LookPath("haproxy"); err == nil && testCert(t) != "" {
		cmd := exec.Command(bin, "-c", "-f", cfgFile)
		cmd.Env = os.Environ()
		for k, v := range hp.Environment {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		// The compose names resolve only inside compose's network, and the
		// certificate is the operator's: check with local stand-ins.
		cmd.Env = append(cmd.Env, "HUNTGATE_NODE1=127.0.0.1:1", "HUNTGATE_NODE2=127.0.0.1:2", "HUNTGATE_NODE3=127.0.0.1:3",
			"HUNTGATE_TLS_CERT="+testCert(t), "HUNTGATE_TLS_BIND="+freeAddr(t), "HUNTGATE_MAXCONN=1000")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("haproxy -c: %v\n%s", err, out)
		}
	}

	checkDockerfile(t, filepath.Join(deploy, doc.Services["node1"].Build.Context, doc.Services["node1"].Build.Dockerfile))
}

// checkDockerfile checks that the sources the Dockerfile builds exist and
// that its HEALTHCHECK is the healthcheck subcommand with flags it knows.
func checkDockerfile(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, m := range regexp.MustCompile(`-o \S+ (\./\S+)`).FindAllStringSubmatch(text, -1) {
		if _, err := os.Stat(filepath.Join(filepath.Dir(path), m[1])); err != nil {
			t.Errorf("Dockerfile builds %s: %v", m[1], err)
		}
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(path), f)); err != nil {
			t.Error(err)
		}
	}
	m := regexp.MustCompile(`(?s)HEALTHCHECK .*?CMD (\[[^\]]*\])`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no HEALTHCHECK")
	}
	var argv []string
	if err := yaml.Unmarshal([]byte(m[1]), &argv); err != nil || len(argv) < 2 {
		t.Fatalf("HEALTHCHECK CMD %s: %v", m[1], err)
	}
	if !strings.Contains(text, "COPY --from=build /out/huntgate "+argv[0]) || argv[1] != "healthcheck" {
		t.Fatalf("HEALTHCHECK runs %v", argv)
	}
	// Its flags parse: against a closed port it fails as unhealthy (1), not
	// as a usage error (2).
	args := append(slices.Clone(argv[2:]), "--admin-addr", freeAddr(t))
	if code := healthcheck(args, noEnv, &bytes.Buffer{}); code != 1 {
		t.Fatalf("healthcheck %v: exit %d, want 1", args, code)
	}
}

// freeAddr is a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testCert writes a throwaway self-signed certificate and key for haproxy
// -c, with the openssl tool; "" without it.
func testCert(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "cert.pem")
	cmd := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "key.pem"), "-out", out, "-subj", "/CN=test", "-days", "1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Logf("no haproxy -c check: openssl: %v %s", err, b)
		return ""
	}
	c, _ := os.ReadFile(out)
	k, _ := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err := os.WriteFile(out, append(c, k...), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}
