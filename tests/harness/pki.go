package harness

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the file paths of the test cluster's credentials.
type pki struct {
	caCert, servingCert, servingKey string
	saKey, saPub                    string
	tokens                          string
	adminToken, kcmToken            string
	caPEM                           []byte

	// The node bed's identities: the API server's client certificate for
	// kubelet calls (logs, exec), and static tokens for the scheduler, the
	// kubelet (as its Node) and kube-proxy.
	kubeletClientCert, kubeletClientKey   string
	schedulerToken, nodeToken, proxyToken string
}

// servingIPs are the addresses the API server's certificate is valid for:
// loopback, the node bed's node IP, and the first address of each test
// bed's Service range (the in-cluster `kubernetes` Service).
var servingIPs = []string{"127.0.0.1", "10.0.0.1", NodeIP, nodeServiceIP}

// newPKI writes a CA, an API server serving certificate, a service-account
// signing key and a static token file into dir. Everything is generated
// fresh per test bed, so no credential outlives it.
func newPKI(dir string) (*pki, error) {
	p := &pki{
		caCert:      filepath.Join(dir, "ca.crt"),
		servingCert: filepath.Join(dir, "serving.crt"),
		servingKey:  filepath.Join(dir, "serving.key"),
		saKey:       filepath.Join(dir, "sa.key"),
		saPub:       filepath.Join(dir, "sa.pub"),
		tokens:      filepath.Join(dir, "tokens.csv"),
	}
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "esosync-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := os.WriteFile(p.caCert, p.caPEM, 0o600); err != nil {
		return nil, err
	}

	servingKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	servingTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses:  parseIPs(servingIPs),
	}
	servingDER, err := x509.CreateCertificate(rand.Reader, servingTmpl, ca, &servingKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.servingCert, "CERTIFICATE", servingDER); err != nil {
		return nil, err
	}
	if err := writePEM(p.servingKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(servingKey)); err != nil {
		return nil, err
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.saKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)); err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.saPub, "PUBLIC KEY", saPubDER); err != nil {
		return nil, err
	}

	p.kubeletClientCert, p.kubeletClientKey = filepath.Join(dir, "kubelet-client.crt"), filepath.Join(dir, "kubelet-client.key")
	if err := writeClientCert(p.kubeletClientCert, p.kubeletClientKey, ca, caKey, "kube-apiserver-kubelet-client", "system:masters"); err != nil {
		return nil, err
	}
	if err := p.writeTokens(); err != nil {
		return nil, err
	}
	return p, nil
}

// writeTokens generates the static bearer tokens and writes the API
// server's token file. The bootstrap RBAC of Kubernetes already binds the
// scheduler, node and proxy users.
func (p *pki) writeTokens() error {
	for _, tok := range []*string{&p.adminToken, &p.kcmToken, &p.schedulerToken, &p.nodeToken, &p.proxyToken} {
		var err error
		if *tok, err = randomToken(); err != nil {
			return err
		}
	}
	// token,user,uid,"group1,group2"
	tokens := fmt.Sprintf("%s,esosync-admin,esosync-admin,\"system:masters\"\n", p.adminToken) +
		fmt.Sprintf("%s,system:kube-controller-manager,system:kube-controller-manager\n", p.kcmToken) +
		fmt.Sprintf("%s,system:kube-scheduler,system:kube-scheduler\n", p.schedulerToken) +
		fmt.Sprintf("%s,system:node:%s,system:node:%s,\"system:nodes\"\n", p.nodeToken, NodeName, NodeName) +
		fmt.Sprintf("%s,system:kube-proxy,system:kube-proxy\n", p.proxyToken)
	return os.WriteFile(p.tokens, []byte(tokens), 0o600)
}

// writeClientCert issues a client certificate signed by the CA.
func writeClientCert(certPath, keyPath string, ca *x509.Certificate, caKey *rsa.PrivateKey, user, group string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: user, Organization: []string{group}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
}

func parseIPs(ips []string) []net.IP {
	out := make([]net.IP, len(ips))
	for i, ip := range ips {
		out[i] = net.ParseIP(ip)
	}
	return out
}

func writePEM(path, blockType string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600)
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
