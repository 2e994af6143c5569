package harness

import (
	"errors"

	vaultapi "github.com/hashicorp/vault/api"
)

// VaultClient is a client of the test bed's Vault with the root token.
func (e *Env) VaultClient() (*vaultapi.Client, error) {
	if e.VaultAddr == "" {
		return nil, errors.New("harness: the test bed runs no Vault (Options.Vault)")
	}
	cfg := vaultapi.DefaultConfig()
	cfg.Address = e.VaultAddr
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(e.VaultToken)
	// VAULT_NAMESPACE in the environment must not redirect the bed's client.
	c.ClearNamespace()
	return c, nil
}
