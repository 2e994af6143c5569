// Package story runs the seed flows of the node test bed as a user would:
// esosync programs through the pulumi CLI, with ESO running as pods and an
// application Deployment that reads the synced Secret. `make demo` tells the
// ESC story with it, and tests/node asserts on the same runs.
package story

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// AppImage is the node bed's application image (tests/tools/images).
const AppImage = "esosync.local/testapp:v1"

// DataHashAnnotation is the pod-template annotation that carries an
// ExternalSecret's dataHash output, as the README tells users to wire it:
// a new hash rolls the Deployment.
const DataHashAnnotation = "esosync.io/data-hash"

// App is a Deployment of the test application that reads a Secret's keys
// as environment variables.
type App struct {
	Clients   kubernetes.Interface
	Namespace string
	Name      string
	// Secret is the Secret the app reads; Env maps variable names to its
	// keys, or to "secret:key" for a key of another Secret.
	Secret string
	Env    map[string]string
	// HashAnnotation is the pod-template annotation a rollout sets
	// (default DataHashAnnotation; rolloutRestartTargets use
	// esosync.io/rollout.<ExternalSecret name>).
	HashAnnotation string
}

// hashKey is the annotation that tells the app's pod templates apart.
func (a *App) hashKey() string {
	if a.HashAnnotation != "" {
		return a.HashAnnotation
	}
	return DataHashAnnotation
}

// Deploy creates the Deployment (one replica) and waits until its pod
// serves.
func (a *App) Deploy(ctx context.Context) error {
	labels := map[string]string{"app": a.Name}
	var env []corev1.EnvVar
	for name, ref := range a.Env {
		secret, key, ok := strings.Cut(ref, ":")
		if !ok {
			secret, key = a.Secret, ref
		}
		env = append(env, corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}})
	}
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: a.Name, Namespace: a.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64),
					Containers: []corev1.Container{{
						Name: "app", Image: AppImage, ImagePullPolicy: corev1.PullNever, Env: env,
						ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
							HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}},
					}},
				},
			},
		},
	}
	if _, err := a.Clients.AppsV1().Deployments(a.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the app Deployment: %w", err)
	}
	_, err := a.WaitRolledOut(ctx, "")
	return err
}

// Roll sets the data-hash annotation of the pod template to hash (the
// dataHash output) and waits until the only pod left is a ready one of the
// new template. It returns that pod's name.
func (a *App) Roll(ctx context.Context, hash string) (string, error) {
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{a.hashKey(): hash}}}}})
	if _, err := a.Clients.AppsV1().Deployments(a.Namespace).Patch(ctx, a.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return "", fmt.Errorf("patching the app's pod template: %w", err)
	}
	return a.WaitRolledOut(ctx, hash)
}

// WaitRolledOut waits until exactly one pod of the app exists, Ready and
// not terminating, with the hash annotation set to hash ("" for none).
// It returns that pod's name.
func (a *App) WaitRolledOut(ctx context.Context, hash string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	last := "no pod yet"
	for {
		pods, err := a.Clients.CoreV1().Pods(a.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + a.Name})
		if err == nil {
			last = fmt.Sprintf("%d pod(s)", len(pods.Items))
			if len(pods.Items) == 1 {
				p := pods.Items[0]
				if p.DeletionTimestamp == nil && p.Annotations[a.hashKey()] == hash && PodReady(&p) {
					return p.Name, nil
				}
				last = fmt.Sprintf("pod %s: phase %s, ready %v", p.Name, p.Status.Phase, PodReady(&p))
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("app %s/%s did not roll out: %s", a.Namespace, a.Name, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Served returns the environment that the app's running pod serves at /env,
// and the pod's name.
func (a *App) Served(ctx context.Context) (map[string]string, string, error) {
	pods, err := a.Clients.CoreV1().Pods(a.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + a.Name})
	if err != nil {
		return nil, "", err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || !PodReady(&p) {
			continue
		}
		env := map[string]string{}
		if err := getJSON(ctx, "http://"+p.Status.PodIP+":8080/env", &env); err != nil {
			return nil, "", fmt.Errorf("reading pod %s's environment: %w", p.Name, err)
		}
		return env, p.Name, nil
	}
	return nil, "", fmt.Errorf("app %s/%s has no ready pod", a.Namespace, a.Name)
}

// Delete removes the Deployment and waits until its pods are gone.
func (a *App) Delete(ctx context.Context) error {
	policy := metav1.DeletePropagationForeground
	if err := a.Clients.AppsV1().Deployments(a.Namespace).Delete(ctx, a.Name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		return err
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		pods, err := a.Clients.CoreV1().Pods(a.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + a.Name})
		if err == nil && len(pods.Items) == 0 {
			return nil
		}
	}
	return fmt.Errorf("the pods of app %s/%s were not removed", a.Namespace, a.Name)
}

// PodReady reports whether the pod's Ready condition is True.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}
