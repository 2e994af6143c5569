package vault

// LoginToken exposes the client's current token to the external tests,
// which check with the root token that Close revoked it.
func LoginToken(c *Client) string { return c.api.Token() }
