package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/evidx/evidx/serve"
	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	var opts serve.Options
	cmd := &cobra.Command{
		Use:   "serve CASE",
		Short: "A local read-only web application over a case (search, sources, overlap, where victims are, evidence, report)",
		Long: `Serve the case's pages on --listen (loopback by default). The case is read
only: nothing is written but access.log (and its access.head), where every search and download is
recorded (who, when, what) and which verify checks. Any address other than
loopback needs --token; clients send it as "Authorization: Bearer T" or open
the URL with ?token=T once (it is then kept in a cookie).`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if opts.Token == "" {
				opts.Token = os.Getenv("EVIDX_SERVE_TOKEN")
			}
			if err := serve.CheckListen(opts.Listen, opts.Token); err != nil {
				return usageError{err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := serve.New(ctx, a[0], opts)
			if err != nil {
				return err
			}
			defer s.Close()
			return s.ListenAndServe(ctx, func(url string) {
				fmt.Fprintf(cmd.OutOrStdout(), "evidx serve: %s on %s (Ctrl-C stops)\n", a[0], url)
			})
		},
	}
	cmd.Flags().StringVar(&opts.Listen, "listen", serve.DefaultListen, "address to listen on (host:port)")
	cmd.Flags().StringVar(&opts.Token, "token", "", "token every request must carry (also $EVIDX_SERVE_TOKEN); required beyond loopback")
	cmd.Flags().BoolVar(&opts.AllowDownload, "allow-download", false, "let extracted and carved files be downloaded")
	return cmd
}
