package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this verb): replace this placeholder with the real command.
func newReportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report",
		Short: "not implemented yet",
		RunE: func(cmd *cobra.Command, a []string) error {
			return errors.New("report: not implemented yet")
		},
	}
}
