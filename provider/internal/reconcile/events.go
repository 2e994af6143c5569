package reconcile

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ESO's Ready condition says only which step failed ("could not get
// secret data from provider"); the error itself, such as AWS's
// SignatureDoesNotMatch or Vault's permission denied, is in the Warning
// event it records beside the condition. esosync reads that event so that
// users see the real cause in failures, progress and refreshed state.

// Warning is the most recent Warning event ESO recorded for an object.
type Warning struct {
	// Reason is the event's reason, e.g. UpdateFailed or ValidationFailed.
	Reason string
	// Message is the event's message, with per-request noise removed.
	Message string
	// At is when the event last occurred.
	At time.Time
}

// String is how a Warning reads inside a message.
func (w *Warning) String() string {
	if w == nil {
		return ""
	}
	return fmt.Sprintf("Warning %s: %s", w.Reason, w.Message)
}

// LatestWarning returns the most recent Warning event with the given
// reason recorded for obj (of kind), or nil when there is none. The reason
// keeps out warnings that are not about the failure: ESO also warns
// "StoreUnmaintained" on every successful validation of some stores.
// Events of a cluster-scoped object live in the default namespace, where
// client-go's recorder puts them.
func LatestWarning(ctx context.Context, c client.Reader, kind string, obj client.Object, reason string) (*Warning, error) {
	ns := obj.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	events := &corev1.EventList{}
	selector := fields.SelectorFromSet(fields.Set{"involvedObject.kind": kind, "involvedObject.name": obj.GetName(),
		"type": corev1.EventTypeWarning, "reason": reason})
	if err := c.List(ctx, events, client.InNamespace(ns), client.MatchingFieldsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("reading the events of %s %s: %w", kind, obj.GetName(), err)
	}
	var latest *Warning
	for i := range events.Items {
		e := &events.Items[i]
		if uid := obj.GetUID(); uid != "" && e.InvolvedObject.UID != "" && e.InvolvedObject.UID != uid {
			continue // an earlier object of the same name
		}
		at := eventTime(e)
		if latest == nil || at.After(latest.At) {
			latest = &Warning{Reason: e.Reason, Message: StableMessage(e.Message), At: at}
		}
	}
	return latest, nil
}

// eventTime is when an event last occurred, whichever API wrote it.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// requestIDs match the per-request identifiers that cloud SDKs put in
// their errors (AWS: "RequestID: 5f1c…,"). They differ on every call, so a
// message carrying one would make two refreshes of an unchanged resource
// disagree.
var requestIDs = regexp.MustCompile(`(?i)(request ?id:?\s*)[0-9a-z-]{8,}`)

// StableMessage removes per-request identifiers from an error message and
// puts it on one line: Vault's API errors span a dozen lines, and Pulumi
// shows only the first line of a warning beside the resource.
func StableMessage(msg string) string {
	return strings.Join(strings.Fields(requestIDs.ReplaceAllString(msg, "${1}…")), " ")
}

// esWarning is ESO's latest sync failure event for an ExternalSecret
// (markAsFailed records them with reason UpdateFailed); nil when none can
// be read.
func esWarning(ctx context.Context, c client.Reader, es client.Object) *Warning {
	w, _ := LatestWarning(ctx, c, esv1.ExtSecretKind, es, esv1.ReasonUpdateFailed)
	return w
}

// withWarning appends ESO's latest Warning event to a not-ready message.
func withWarning(message string, w *Warning) string {
	if w == nil {
		return message
	}
	return message + " (" + w.String() + ")"
}
