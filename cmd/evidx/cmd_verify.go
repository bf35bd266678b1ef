package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this verb): replace this placeholder with the real command.
func newVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "not implemented yet",
		RunE: func(cmd *cobra.Command, a []string) error {
			return errors.New("verify: not implemented yet")
		},
	}
}
