package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/custody"
)

// caseInitOptions are the flags of `evidx case init`.
type caseInitOptions struct {
	CaseNumber  string
	Examiner    string
	Agency      string
	Description string
	Shards      int
	SignKey     string // ed25519 private key file: read, or generated when missing
	JSON        bool
}

func newCaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "case",
		Short: "Create and manage case directories",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			return usageError{errors.New("case: missing subcommand (init, merge)")}
		},
	}
	cmd.AddCommand(newCaseInitCmd(), newCaseMergeCmd())
	return cmd
}

func newCaseInitCmd() *cobra.Command {
	var opts caseInitOptions
	cmd := &cobra.Command{
		Use:   "init DIR --case-number N --examiner NAME",
		Short: "Create a case directory (0700) with its catalog, audit log and content store",
		Long: `Create a case directory: DIR must not exist or be empty. It is made 0700
and every file in it 0600 (it will hold personal data). The catalog
(catalog.sqlite), the hash-chained audit log (audit.log) and the content
store (objects/) are created and the creation is the first audit entry.

--shards fixes the identity index shard count for the case's life.
--sign-key KEYFILE reads an ed25519 private key (PEM, PKCS#8), or generates
one there when KEYFILE does not exist. Keep KEYFILE outside the case
directory. Its public key is recorded in the case (signing.pub), every audit
line is signed with it, and every later command that writes to the case
needs it: --sign-key KEYFILE or EVIDX_SIGN_KEY=KEYFILE (without it the
command fails before doing anything; stats, search and verify still read
the case, verify then without recording itself). Reports can be signed with
'evidx report --sign KEYFILE'. Give 'evidx verify --pubkey PUB' the public
key kept outside the case ('openssl pkey -in KEYFILE -pubout > PUB') to
check every signature against it.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runCaseInit(cmd.Context(), cmd, opts, a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.CaseNumber, "case-number", "", "case number (required)")
	f.StringVar(&opts.Examiner, "examiner", "", "examiner's name (required)")
	f.StringVar(&opts.Agency, "agency", "", "agency or laboratory")
	f.StringVar(&opts.Description, "description", "", "free-text case description")
	f.IntVar(&opts.Shards, "shards", custody.DefaultShards, "identity index shard count (1-999), fixed for the case")
	f.StringVar(&opts.SignKey, "sign-key", "", "ed25519 private key file signing the audit log and reports (generated if missing)")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	return cmd
}

// caseInitResult is the JSON of `case init`.
type caseInitResult struct {
	Dir           string    `json:"dir"`
	CaseNumber    string    `json:"case_number"`
	Examiner      string    `json:"examiner"`
	Agency        string    `json:"agency"`
	Shards        int       `json:"shards"`
	Created       time.Time `json:"created"`
	Tool          string    `json:"tool"`
	SignPublicKey string    `json:"sign_public_key,omitempty"`
}

func runCaseInit(ctx context.Context, cmd *cobra.Command, opts caseInitOptions, a []string) error {
	if opts.CaseNumber == "" || opts.Examiner == "" {
		return usageError{errors.New("case init: --case-number and --examiner are required")}
	}
	if opts.Shards < 1 || opts.Shards > 999 {
		return usageError{fmt.Errorf("case init: --shards %d not in 1..999", opts.Shards)}
	}
	dir := a[0]
	var pub string
	meta := custody.Meta{CaseNumber: opts.CaseNumber, Examiner: opts.Examiner, Agency: opts.Agency,
		Description: opts.Description, Shards: opts.Shards}
	var c *custody.Case
	var err error
	if opts.SignKey != "" {
		if err := custody.CheckOverlap(dir, opts.SignKey); err != nil {
			return usageError{fmt.Errorf("case init: keep the signing key outside the case directory: %w", err)}
		}
		if pub, err = custody.LoadOrCreateKey(opts.SignKey); err != nil {
			return err
		}
		c, err = custody.InitSigned(ctx, dir, meta, opts.SignKey)
	} else {
		c, err = custody.Init(ctx, dir, meta)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	m := c.Meta()
	res := caseInitResult{Dir: c.Dir(), CaseNumber: m.CaseNumber, Examiner: m.Examiner, Agency: m.Agency, Shards: m.Shards,
		Created: m.Created, Tool: m.Tool, SignPublicKey: m.SignPubKey}
	if opts.JSON {
		return writeJSON(cmd.OutOrStdout(), res)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "case %s created in %s (%d index shards)\n", oneLine(m.CaseNumber), res.Dir, m.Shards)
	if pub != "" {
		fmt.Fprintf(cmd.OutOrStdout(), "audit log and reports signed with ed25519 key %s (private key: %s; later commands need --sign-key or %s)\n", pub, filepath.Clean(opts.SignKey), custody.EnvSignKey)
	}
	return nil
}

// signKeyFlag is the root's --sign-key: the examiner's key of a signed case.
var signKeyFlag string

// openCase opens a case to change it: a case whose audit log is signed
// needs its key, from --sign-key, else fallback (a command's own key
// flag), else $EVIDX_SIGN_KEY; without one it fails with a message naming
// them.
func openCase(ctx context.Context, dir string, fallback ...string) (*custody.Case, error) {
	key := signKeyFlag
	for _, f := range fallback {
		if key == "" {
			key = f
		}
	}
	if key == "" {
		key = os.Getenv(custody.EnvSignKey)
	}
	return custody.OpenWith(ctx, dir, custody.OpenOptions{SignKey: key})
}

// openCaseRead opens a case to read it: a signed case opens without its
// key (with it when given), but then cannot write to its audit log.
func openCaseRead(ctx context.Context, dir string) (*custody.Case, error) {
	key := signKeyFlag
	if key == "" {
		key = os.Getenv(custody.EnvSignKey)
	}
	return custody.OpenWith(ctx, dir, custody.OpenOptions{SignKey: key, ReadOnly: true})
}
