package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/orbitkernel/orbit/security"
)

const certUsage = `usage:
  orbit cert create-ca --certs-dir DIR --ca-key FILE [--lifetime 87600h] [--overwrite]
  orbit cert create-node HOST... --certs-dir DIR --ca-key FILE [--lifetime 43800h] [--overwrite]
  orbit cert create-client USER --certs-dir DIR --ca-key FILE [--lifetime 43800h] [--overwrite]

create-ca writes DIR/ca.crt and the CA key at FILE (keep it off the servers
if you can: whoever holds it can make nodes). create-node writes
DIR/node.crt and node.key for a node reached as HOST... (every name and IP
address clients and peers use for it). create-client writes
DIR/client.USER.crt and .key. Existing files are kept unless --overwrite.
`

// certCommand is `orbit cert create-ca|create-node|create-client`: it
// writes TLS material with package security and returns the exit code (2
// for bad usage, 1 when the files cannot be made).
func certCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, certUsage)
		return 2
	}
	sub := args[0]
	lifetime := security.DefaultCertLifetime
	if sub == "create-ca" {
		lifetime = security.DefaultCALifetime
	}
	fs := flag.NewFlagSet("cert "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("certs-dir", "", "the certificates directory (ca.crt, node.crt, node.key, client.USER.crt/.key)")
	caKey := fs.String("ca-key", "", "the CA's private key file")
	fs.DurationVar(&lifetime, "lifetime", lifetime, "how long the certificate is valid")
	overwrite := fs.Bool("overwrite", false, "replace existing files")
	positional, err := parseInterspersed(fs, args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, certUsage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "orbit cert %s: %v\n%s", sub, err, certUsage)
		return 2
	case *dir == "" || *caKey == "":
		fmt.Fprintf(stderr, "orbit cert %s: --certs-dir and --ca-key are required\n%s", sub, certUsage)
		return 2
	}
	var wrote []string
	switch {
	case sub == "create-ca" && len(positional) == 0:
		err = security.CreateCA(*dir, *caKey, lifetime, *overwrite)
		wrote = []string{filepath.Join(*dir, security.CACertFile), *caKey}
	case sub == "create-node" && len(positional) > 0:
		err = security.CreateNode(*dir, *caKey, positional, lifetime, *overwrite)
		wrote = []string{filepath.Join(*dir, security.NodeCertFile), filepath.Join(*dir, security.NodeKeyFile)}
	case sub == "create-client" && len(positional) == 1:
		err = security.CreateClient(*dir, *caKey, positional[0], lifetime, *overwrite)
		wrote = []string{filepath.Join(*dir, security.ClientCertFile(positional[0])), filepath.Join(*dir, security.ClientKeyFile(positional[0]))}
	default:
		fmt.Fprint(stderr, certUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "orbit cert %s: %v\n", sub, err)
		return 1
	}
	for _, w := range wrote {
		fmt.Fprintln(stdout, "wrote", w)
	}
	return 0
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments (`create-node HOST --certs-dir D HOST2`), as
// CockroachDB's cert commands accept them; Go's flag package stops at the
// first positional one.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
