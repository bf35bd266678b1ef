package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this verb): replace this placeholder with the real command.
func newScanCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "scan",
		Short: "not implemented yet",
		RunE: func(cmd *cobra.Command, a []string) error {
			return errors.New("scan: not implemented yet")
		},
	}
}
