package kube

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/api/equality"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Labels and annotations esosync puts on what it creates.
const (
	// ManagedByLabel with ManagedByValue marks every object esosync creates.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is ManagedByLabel's value.
	ManagedByValue = "esosync"
	// OwnerAnnotation names the esosync resource a managed Secret belongs
	// to; esosync never writes or deletes a Secret whose owner differs.
	OwnerAnnotation = "esosync.io/store"
)

// IsNoMatch reports that the API server does not serve the kind (ESO's
// CRDs are not installed): the object cannot exist.
func IsNoMatch(err error) bool { return meta.IsNoMatchError(err) }

// IsGone reports that the object does not exist, or cannot (its kind is
// not served).
func IsGone(err error) bool { return apierrors.IsNotFound(err) || IsNoMatch(err) }

// CRDHint explains a missing CRD.
func CRDHint(err error) error {
	if IsNoMatch(err) {
		return fmt.Errorf("%w (are External Secrets Operator's CRDs installed? add an esosync.Operator and dependsOn it)", err)
	}
	return err
}

// Upsert updates the live object with mutate, or creates desired when it
// does not exist. The read-modify-write is retried on conflicts: ESO
// writes the status of its objects meanwhile. It returns the object as
// written.
func Upsert[T client.Object](ctx context.Context, c client.Client, desired T, empty func() T, mutate func(live T)) (T, error) {
	var written T
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live := empty()
		switch err := c.Get(ctx, client.ObjectKeyFromObject(desired), live); {
		case apierrors.IsNotFound(err):
			if err := c.Create(ctx, desired); err != nil {
				return fmt.Errorf("re-creating: %w", CRDHint(err))
			}
			written = desired
			return nil
		case err != nil:
			return fmt.Errorf("reading: %w", err)
		}
		before := live.DeepCopyObject()
		mutate(live)
		written = live
		if equality.Semantic.DeepEqual(before, live) {
			return nil // an update that changes nothing is not sent
		}
		return c.Update(ctx, live)
	})
	return written, err
}

// WriteOwnedSecret creates or updates the Secret at key that esosync
// manages for owner. It refuses to touch a Secret of that name that
// esosync does not manage for owner.
func WriteOwnedSecret(ctx context.Context, c client.Client, key client.ObjectKey, owner string, data map[string][]byte) (created, changed bool, err error) {
	live := &corev1.Secret{}
	err = c.Get(ctx, key, live)
	switch {
	case apierrors.IsNotFound(err):
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace,
				Labels:      map[string]string{ManagedByLabel: ManagedByValue},
				Annotations: map[string]string{OwnerAnnotation: owner}},
			Type: corev1.SecretTypeOpaque,
			Data: data,
		}
		if err := c.Create(ctx, secret); err != nil {
			return false, false, fmt.Errorf("creating Secret %s: %w", key, err)
		}
		return true, true, nil
	case err != nil:
		return false, false, fmt.Errorf("reading Secret %s: %w", key, err)
	}
	if live.Annotations[OwnerAnnotation] != owner {
		return false, false, fmt.Errorf("Secret %s exists and is not managed by esosync for %s; esosync will not overwrite it", key, owner)
	}
	if maps.EqualFunc(live.Data, data, func(a, b []byte) bool { return string(a) == string(b) }) {
		return false, false, nil
	}
	live.Data = data
	if err := c.Update(ctx, live); err != nil {
		return false, false, fmt.Errorf("updating Secret %s: %w", key, err)
	}
	return false, true, nil
}

// ReadOwnedSecret returns the data of the Secret at key if esosync manages
// it for owner; found is false when it does not exist or belongs to
// someone else.
func ReadOwnedSecret(ctx context.Context, c client.Client, key client.ObjectKey, owner string) (data map[string][]byte, found bool, err error) {
	live := &corev1.Secret{}
	if err := c.Get(ctx, key, live); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("reading Secret %s: %w", key, err)
	}
	if live.Annotations[OwnerAnnotation] != owner {
		return nil, false, nil
	}
	return live.Data, true, nil
}

// DeleteOwnedSecret deletes the Secret at key if esosync manages it for
// owner; anything else is left alone.
func DeleteOwnedSecret(ctx context.Context, c client.Client, key client.ObjectKey, owner string) error {
	_, found, err := ReadOwnedSecret(ctx, c, key, owner)
	if err != nil || !found {
		return err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
	if err := c.Delete(ctx, secret); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Secret %s: %w", key, err)
	}
	return nil
}
